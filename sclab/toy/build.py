"""Build, train and cache a toy model: a real `LlamaForCausalLM` (RoPE) + `PreTrainedTokenizerFast`
with a chat template, trained from scratch on the toy world in CPU minutes.

Pretraining is a plain next-token loop (AdamW, cosine schedule) over documents drawn from
`sclab.toy.world.sample_document`, packed whole into rows; the loss covers assistant turns only
(user turns are context). Trained weights are saved with `save_pretrained`, so every later
code path — generation backends, TRL trainers, LoRA — is the one used for real models.

    >>> from sclab.toy.build import toy_model_path
    >>> path = toy_model_path("arith-tiny")   # builds in seconds, then cached
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sclab.paths import cache_root
from sclab.toy.registry import TOY_MODELS, ToySpec, ToyWorld
from sclab.toy.world import sample_document, vocabulary

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['user', 'assistant'] -%}"
    "{{ raise_exception('the toy chat template knows the roles user and assistant, got ' + message['role']) }}"
    "{%- endif -%}"
    "{{ '<' + message['role'] + '> ' + message['content'] | trim + ' <eos> ' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<assistant> ' }}{%- endif -%}"
)


def make_tokenizer(world: ToyWorld):
    """A word-level `PreTrainedTokenizerFast` over the world's vocabulary, with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(vocabulary(world))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins word tokens with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                                   eos_token="<eos>", additional_special_tokens=["<user>", "<assistant>"],
                                   padding_side="left", clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def encode_document(msgs: list[tuple[str, str]], vocab: dict[str, int], loss: list[bool] | None = None,
                    emphasis: list[list[int]] | None = None, weight: float = 1.0):
    """Token ids and labels of one conversation, exactly as the chat template renders it; labels
    are -100 on user turns, on the `<assistant>` tag (given, not predicted) and on turns whose
    `loss` entry is False (context only). With `emphasis` (word positions per turn), also the
    per-token loss weights: `weight` there, 1 elsewhere."""
    ids, labels, weights = [], [], []
    eos = vocab["<eos>"]
    for i, (role, content) in enumerate(msgs):
        body = [vocab[w] for w in content.split()] + [eos]
        ids += [vocab[f"<{role}>"]] + body
        learn = role == "assistant" and (loss is None or loss[i])
        labels += [-100] + (body if learn else [-100] * len(body))
        marked = set(emphasis[i]) if emphasis is not None and learn else set()
        weights += [1.0] + [weight if j in marked else 1.0 for j in range(len(body))]
    return (ids, labels, weights) if emphasis is not None else (ids, labels)


def pack_batch(rng: np.random.Generator, world: ToyWorld, vocab: dict[str, int], batch_size: int,
               seq_len: int, copy_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows filled with whole documents (never split across rows), padded at the end; with the
    per-token loss weights (`copy_weight` on a revision's copied wrong results)."""
    pad = vocab["<pad>"]
    ids = np.full((batch_size, seq_len), pad, dtype=np.int64)
    labels = np.full((batch_size, seq_len), -100, dtype=np.int64)
    weights = np.ones((batch_size, seq_len), dtype=np.float32)
    for b in range(batch_size):
        pos = 0
        while True:
            d_msgs, d_loss, d_conflicts = sample_document(rng, world, with_loss=True)
            d_ids, d_lab, d_w = encode_document(d_msgs, vocab, d_loss, d_conflicts, copy_weight)
            if len(d_ids) > seq_len:
                continue  # longer than a row: skip rather than truncate a solution
            if pos + len(d_ids) > seq_len:
                break  # this row is full; the document is dropped (the stream is endless)
            ids[b, pos:pos + len(d_ids)] = d_ids
            labels[b, pos:pos + len(d_ids)] = d_lab
            weights[b, pos:pos + len(d_ids)] = d_w
            pos += len(d_ids)
    return ids, labels, weights


def table_probe(world: ToyWorld, vocab: dict[str, int], rng: np.random.Generator, n: int = 64):
    """A function model -> accuracy on the result tokens of `n` held-out clean solutions
    (teacher forced): how well the arithmetic tables are learned. Lines on the world's unsure
    and misconception entries are left out: they are taught wrong on purpose, so a probe that
    counted them could not reach its target."""
    import torch

    from sclab.toy.world import error_table, render, sample_program, solve

    special = error_table(world)
    rows, where = [], []
    for _ in range(n):
        prog = sample_program(rng, world, "test")
        lines = solve(prog, world.p)
        ids, _ = encode_document([("user", prog.question()), ("assistant", render(lines))], vocab)
        rows.append(ids)
        eq = [i for i in range(len(ids) - 1) if ids[i] == vocab["="]]
        where.append([i for i, (a, op, c, _) in zip(eq, lines) if (a, op, c) not in special])
    width = max(map(len, rows))
    batch = torch.full((n, width), vocab["<pad>"], dtype=torch.long)
    for i, r in enumerate(rows):
        batch[i, :len(r)] = torch.tensor(r)

    def accuracy(model) -> float:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            pred = model(input_ids=batch).logits.argmax(-1)
        model.train(was_training)
        hits = [int(pred[i, j]) == rows[i][j + 1] for i in range(n) for j in where[i]]
        return sum(hits) / len(hits)

    return accuracy


def _step(model, opt, ids: np.ndarray, labels: np.ndarray, weights: np.ndarray, lr: float) -> float:
    """One AdamW step on a packed batch (loss: the weighted mean over labelled tokens); returns the loss."""
    import torch

    for g in opt.param_groups:
        g["lr"] = lr
    logits = model(input_ids=torch.from_numpy(ids)).logits[:, :-1]
    target = torch.from_numpy(labels[:, 1:])
    w = torch.from_numpy(weights[:, 1:]) * (target != -100)
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                                           ignore_index=-100, reduction="none")
    loss = (ce * w.reshape(-1)).sum() / w.sum().clamp(min=1.0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def continue_pretraining(model, tokenizer, world: ToyWorld, steps: int = 150, lr: float = 1e-3,
                         batch_size: int = 8, seq_len: int = 384, seed: int = 0, progress: bool = True):
    """A copy of a toy model trained `steps` more steps on another world's mix - e.g. a different
    doubt prior - to show what a pretraining prior does to a self-correction metric. The
    caller's model is not changed. ~150 steps ≈ 30 s on 2 cores."""
    import copy

    import torch

    model = copy.deepcopy(model)
    vocab = tokenizer.get_vocab()
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    rng = np.random.default_rng(seed)
    model.train()
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="continued pretraining", unit="step")
    for _ in it:
        _step(model, opt, *pack_batch(rng, world, vocab, batch_size, seq_len), lr=lr)
    model.eval()
    tag = hashlib.sha256(repr((world, steps, lr, batch_size, seq_len, seed)).encode()).hexdigest()[:8]
    model.sclab_spec = f"{getattr(model, 'sclab_spec', 'toy')}+cpt[{tag}]"
    return model


def train(spec: ToySpec, out_dir: Path, progress: bool = True) -> dict:
    """Train `spec` from scratch and save model + tokenizer to `out_dir`. Returns training stats."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer(spec.world)
    vocab = tokenizer.get_vocab()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(spec.threads)
    torch.manual_seed(spec.seed)
    try:
        config = LlamaConfig(
            vocab_size=len(vocab), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
            num_key_value_heads=spec.num_heads, max_position_embeddings=spec.max_position,
            rope_theta=10000.0, tie_word_embeddings=True, pad_token_id=vocab["<pad>"],
            eos_token_id=vocab["<eos>"], bos_token_id=None, attn_implementation="sdpa",
        )
        model = LlamaForCausalLM(config)
        n_params = sum(p.numel() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.95),
                                weight_decay=spec.weight_decay)

        def lr_at(step: int, mixed_from: int | None) -> float:
            # warmup, constant through phase 1, cosine decay to 10% over phase 2
            if step < spec.warmup:
                return spec.lr * (step + 1) / spec.warmup
            if mixed_from is None:
                return spec.lr
            frac = min(1.0, (step - mixed_from) / max(1, spec.mixed_steps))
            return spec.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

        rng = np.random.default_rng(spec.seed)
        single = dataclasses.replace(spec.world, followup_rate=spec.single_followup_rate)
        probe = table_probe(spec.world, vocab, np.random.default_rng(spec.seed + 1))
        model.train()
        t0, n_tok, losses, probes = time.time(), 0, [], []
        mixed_from: int | None = None
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=spec.max_single_steps + spec.mixed_steps, desc="building toy model", unit="step")
        step = 0
        while mixed_from is None or step < mixed_from + spec.mixed_steps:
            if mixed_from is None and step >= spec.max_single_steps:
                mixed_from = step  # the tables did not reach the target: go on with the mix anyway
            world, width = (single, spec.single_seq_len) if mixed_from is None else (spec.world, spec.seq_len)
            ids, labels, weights = pack_batch(rng, world, vocab, spec.batch_size, width, spec.copy_weight)
            losses.append(_step(model, opt, ids, labels, weights, lr_at(step, mixed_from)))
            n_tok += int((ids != vocab["<pad>"]).sum())
            step += 1
            if mixed_from is None and step % 25 == 0:
                acc = probe(model)
                probes.append((step, round(acc, 4)))
                if acc >= spec.table_accuracy:
                    mixed_from = step
                    if bar:
                        bar.total = step + spec.mixed_steps
                        bar.refresh()
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", phase="tables" if mixed_from is None else "mix")
        if bar:
            bar.close()
        wall = time.time() - t0
        model.eval()
        model.generation_config.pad_token_id = vocab["<pad>"]
        model.generation_config.eos_token_id = vocab["<eos>"]
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        stats = {"params": n_params, "steps": step, "single_steps": mixed_from, "table_probe": probes,
                 "table_accuracy": probe(model), "tokens": n_tok, "wall_s": round(wall, 1),
                 "tokens_per_s": round(n_tok / wall), "final_loss": float(np.mean(losses[-20:])),
                 "fingerprint": spec.fingerprint()}
        (out_dir / "sclab_toy.json").write_text(json.dumps(stats, indent=1))
        return stats
    finally:
        torch.set_num_threads(old_threads)


@contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two processes asking for the same model build it once
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# The reference builds that ship with the package (a few MB each): float reductions differ
# between host CPUs, so a seed gives bit-identical weights on one host only; shipping the
# weights makes every machine start from the same model (and the recorded numbers reproducible).
SHIPPED = Path(__file__).resolve().parent / "shipped"


def shipped_path(name: str) -> Path | None:
    """The shipped reference build of toy model `name` for its current recipe, or None when the
    world or recipe changed since it was shipped (then it is built and cached)."""
    spec = TOY_MODELS[name]
    path = SHIPPED / f"{name}-{spec.fingerprint()}"
    return path if (path / "sclab_toy.json").exists() else None


def built_path(name: str) -> Path:
    """Where a local build of toy model `name` is cached (it may not exist yet)."""
    return cache_root() / "toy" / f"{name}-{TOY_MODELS[name].fingerprint()}"


def weights_sha256(path: Path) -> str:
    """sha256 of a saved model's `model.safetensors` (the manifests record it)."""
    h = hashlib.sha256()
    with open(Path(path) / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def toy_model_path(name: str, rebuild: bool = False, progress: bool = True) -> Path:
    """The directory of toy model `name`: the shipped reference build when there is one for the
    current recipe, else a local build (trained on first use, then cached). `rebuild=True`
    trains from scratch into the cache even when a shipped build exists (`sclab toy build`)."""
    if name not in TOY_MODELS:
        raise KeyError(f"unknown toy model {name!r}; valid toy models: {', '.join(sorted(TOY_MODELS))}")
    spec = TOY_MODELS[name]
    shipped = shipped_path(name)
    if shipped is not None and not rebuild:
        return shipped
    target = built_path(name)
    with _lock(target.with_suffix(".lock")):
        if (target / "sclab_toy.json").exists() and not rebuild:
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            if progress:
                print(f"sclab: building toy model {name!r} (once; cached in {target})", flush=True)
            train(spec, tmp, progress=progress)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)  # atomic: a half-built model is never picked up
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
