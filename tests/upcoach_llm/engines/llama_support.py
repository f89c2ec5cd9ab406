"""What the llama engine tests share: the model, prompts, and a whole reply read as the
services read it."""

from __future__ import annotations

import llama_cpp
import numpy as np

from upcoach_llm.common.chat import Message, Sampling
from upcoach_llm.engines.base import ChatEngine, Finished, TextChunk

MODEL = "smollm2-135m-instruct"
N_CTX = 512
STORY = [Message("user", "Write a long story about a habit coach who helps a runner.")]
PROMPTS = [
    [Message("user", "Give me three tips to drink more water.")],
    [Message("system", "You are a concise coach."),
     Message("user", "How do I start meditating?")],
    [Message("user", "Write a short poem about morning walks.")],
]


async def collect(engine: ChatEngine, messages: list[Message], sampling: Sampling,
                  model: str) -> tuple[list[str], Finished]:
    """The text chunks and the one Finished of a reply; nothing may follow Finished."""
    chunks: list[str] = []
    finished: list[Finished] = []
    async for item in engine.stream(model, messages, sampling):
        assert not finished, "nothing may follow Finished"
        if isinstance(item, TextChunk):
            chunks.append(item.text)
        else:
            finished.append(item)
    assert len(finished) == 1
    return chunks, finished[0]


def logit_split_noise(model_path: str, text: str) -> float:
    """How far llama.cpp's logits for a prompt's last token move on this machine when the prompt
    is evaluated in other batch shapes (the last token alone, two chunks) instead of one batch:
    the largest absolute difference of any logit. 0 where its CPU kernels compute each token's
    row alone; seen up to about 0.6 on an AVX-512 machine, where they do not."""
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.use_extra_bufts = False  # as the engine loads it: see LLAMA_EXTRA_BUFFERS (AMX VMs)
    model = llama_cpp.llama_model_load_from_file(model_path.encode(), params)
    try:
        vocab = llama_cpp.llama_model_get_vocab(model)
        size = llama_cpp.llama_vocab_n_tokens(vocab)
        encoded = text.encode()
        buffer = (llama_cpp.llama_token * N_CTX)()
        count = llama_cpp.llama_tokenize(vocab, encoded, len(encoded), buffer, N_CTX, True, True)
        tokens = list(buffer[:count])

        def last_logits(cuts: list[int]) -> np.ndarray:
            params = llama_cpp.llama_context_default_params()
            params.n_ctx, params.n_batch, params.n_threads, params.n_threads_batch = (
                N_CTX, N_CTX, 2, 2)
            ctx = llama_cpp.llama_init_from_model(model, params)
            try:
                for start, end in zip([0, *cuts], [*cuts, count], strict=True):
                    batch = llama_cpp.llama_batch_init(end - start, 0, 1)
                    batch.n_tokens = end - start
                    for i, token in enumerate(tokens[start:end]):
                        batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, start + i, 1
                        batch.seq_id[i][0], batch.logits[i] = 0, int(start + i == count - 1)
                    assert llama_cpp.llama_decode(ctx, batch) == 0
                    llama_cpp.llama_batch_free(batch)
                return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1),
                                             shape=(size,)).copy()
            finally:
                llama_cpp.llama_free(ctx)

        whole = last_logits([])
        return max(float(np.abs(last_logits(cuts) - whole).max())
                   for cuts in ([count - 1], [count // 2], [count // 2, count - 1]))
    finally:
        llama_cpp.llama_model_free(model)
