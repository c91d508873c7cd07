"""What the setup cells of episode notebooks share: the generator for a `model` and `backend`,
and the retry turn that training-data builders put between two attempts.

On the hf backend the model is loaded here and kept (notebooks fine-tune it, or continue its
pretraining); on vllm the engine loads it from the spec itself and no model object exists.

    >>> from sclab.runs.setup import load_generator
    >>> gen, lm, tok = load_generator("toy:arith-tiny")   # built in seconds on first use, then cached
    >>> gen.backend_name, lm is gen.model, tok is gen.tokenizer
    ('hf', True, True)
"""
from __future__ import annotations

from typing import Callable

from sclab.generate import BACKENDS, Generator
from sclab.strategies import get_strategy


def load_generator(model: str, backend: str = "hf", batch_size: int = 64, **vllm_kwargs):
    """(generator, model, tokenizer) for a model spec on a backend.

    hf: `sclab.models.load(model)` and a `Generator` over it (batches of `batch_size` rows);
    vllm: a `Generator(model, backend="vllm")`, the model None (it lives in the engine) and the
    engine's tokenizer; `vllm_kwargs` go to `vllm.LLM` (e.g. gpu_memory_utilization=0.35 where an
    hf copy of the model trains beside the engine on the same GPU)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "hf":
        from sclab.models import load

        lm, tok = load(model)
        return Generator(lm, tok, batch_size=batch_size), lm, tok
    gen = Generator(model, backend=backend, **vllm_kwargs)
    return gen, None, gen.backend.llm.get_tokenizer()


def retry_message(task, strategy: str) -> Callable:
    """problem -> the user turn that `strategy` says after attempt 1 (its first message), in the
    task's dialect: what the SFT and DPO data builders of `sclab.train` take as `retry_message`.

    >>> from sclab.tasks import get_task
    >>> task = get_task("arith"); problem = task.problems(1, seed=0)[0]
    >>> retry_message(task, "retry")(problem) == "again " + problem.question
    True
    """
    strat = get_strategy(strategy)

    def message(problem) -> str:
        return strat.messages(task.dialect, task.answer_format, problem.question, task.final_answer)[0]

    return message
