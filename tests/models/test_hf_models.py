"""Hugging Face transformers models built from small configs (nothing downloaded), compiled whole with
`jit.compile(model)` and checked against eager: eval outputs (logits or hidden states, and the KV cache a causal LM
hands back), one graph with no break, a cache hit on the next call, loss and every gradient in train mode, and
greedy decoding over a growing sequence (one compile per length until the length is compiled as dynamic)."""
import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

import jit

transformers = pytest.importorskip("transformers")

VOCAB, HIDDEN, HEADS, KV_HEADS, LAYERS, FFN, POSITIONS = 128, 64, 4, 2, 2, 128, 64
BATCH, SEQ, PROMPT, NEW_TOKENS = 2, 12, 8, 6
TOL = dict(rtol=1e-5, atol=1e-5)


def _gpt2():
    # GPT-2's default bos/eos ids (50256) lie outside a 128-token vocabulary; transformers warns about them.
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=LAYERS, n_embd=HIDDEN, n_head=HEADS, n_inner=FFN, vocab_size=VOCAB, n_positions=POSITIONS,
        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1))


def _bert():
    return transformers.BertModel(transformers.BertConfig(
        num_hidden_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=HEADS, intermediate_size=FFN,
        vocab_size=VOCAB, max_position_embeddings=POSITIONS))


def _llama():  # grouped-query attention: fewer key/value heads than query heads
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(
        num_hidden_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        intermediate_size=FFN, vocab_size=VOCAB, max_position_embeddings=POSITIONS))


def _qwen2():  # Llama-like with biases on q/k/v, grouped-query attention
    return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        num_hidden_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
        intermediate_size=FFN, vocab_size=VOCAB, max_position_embeddings=POSITIONS))


def _gpt_neox():  # parallel residual, fused qkv, rotary on a quarter of each head
    return transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(
        num_hidden_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=HEADS, intermediate_size=FFN,
        vocab_size=VOCAB, max_position_embeddings=POSITIONS))


def _opt():  # learned positions offset by 2, ReLU MLP, dropout 0.1
    return transformers.OPTForCausalLM(transformers.OPTConfig(
        num_hidden_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=HEADS, ffn_dim=FFN,
        word_embed_proj_dim=HIDDEN, vocab_size=VOCAB, max_position_embeddings=POSITIONS))


def _t5_encoder():  # relative position buckets, RMS norm without mean, masks built from torch.finfo(dtype).min
    return transformers.T5EncoderModel(transformers.T5Config(
        num_layers=LAYERS, d_model=HIDDEN, d_kv=HIDDEN // HEADS, num_heads=HEADS, d_ff=FFN, vocab_size=VOCAB))


def _bart():  # encoder-decoder: the decoder's inputs are the ids shifted right into a fresh tensor (slice writes)
    return transformers.BartModel(transformers.BartConfig(
        vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=LAYERS, decoder_layers=LAYERS, encoder_attention_heads=HEADS,
        decoder_attention_heads=HEADS, encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, max_position_embeddings=POSITIONS,
        use_cache=False))


def _mbart():  # the labels' shift (a gather) comes before the encoder's set-and-reset of transformers' global
    return transformers.MBartModel(transformers.MBartConfig(
        vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=LAYERS, decoder_layers=LAYERS, encoder_attention_heads=HEADS,
        decoder_attention_heads=HEADS, encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, max_position_embeddings=POSITIONS,
        use_cache=False))


@dataclass(frozen=True)
class Case:
    build: Callable[[], torch.nn.Module]
    causal: bool  # a causal LM (logits, a KV cache, decodable) rather than an encoder (hidden states)


CASES = {
    "gpt2": Case(_gpt2, causal=True),
    "bert": Case(_bert, causal=False),
    "llama": Case(_llama, causal=True),
    "qwen2": Case(_qwen2, causal=True),
    "gpt_neox": Case(_gpt_neox, causal=True),
    "opt": Case(_opt, causal=True),
    "t5_encoder": Case(_t5_encoder, causal=False),
    "bart": Case(_bart, causal=False),
    "mbart": Case(_mbart, causal=False),
}
CAUSAL = [name for name, case in CASES.items() if case.causal]


@pytest.fixture(autouse=True)
def _fresh():
    jit.reset()
    jit.counters.clear()
    yield
    jit.reset()


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return CASES[name].build()


def _ids(seq: int = SEQ, seed: int = 1, batch: int = BATCH) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def _tensors(output) -> dict[str, torch.Tensor]:
    """Every tensor a model output holds, by name: its tensor fields and each layer's cached keys and values."""
    found = {}
    for key, value in output.items():
        if isinstance(value, torch.Tensor):
            found[key] = value
        elif isinstance(value, transformers.Cache):
            for i, layer in enumerate(value.layers):
                found[f"{key}[{i}].keys"], found[f"{key}[{i}].values"] = layer.keys, layer.values
        else:
            raise AssertionError(f"output field {key!r} holds a {type(value).__name__} this test does not compare")
    return found


def _assert_outputs_equal(got, expected) -> None:
    got, expected = _tensors(got), _tensors(expected)
    assert list(got) == list(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], **TOL, msg=lambda m: f"{key}: {m}")


def _loss(name: str, output) -> torch.Tensor:
    """Cross entropy against fixed random labels for a causal LM; mean squared error against a fixed random target
    for an encoder (a squared norm of a layer-normed output would give its weights next to no gradient)."""
    if CASES[name].causal:
        labels = _ids(seed=2)
        return F.cross_entropy(output.logits.float().flatten(0, 1), labels.flatten())
    hidden = output.last_hidden_state.float()
    target = torch.randn(hidden.shape, generator=torch.Generator().manual_seed(3))
    return F.mse_loss(hidden, target)


def _greedy(model, ids: torch.Tensor, steps: int) -> torch.Tensor:
    for _ in range(steps):
        logits = model(ids).logits
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], 1)
    return ids


@pytest.mark.parametrize("name", CASES)
def test_eval_matches_eager(name):
    model = _model(name).eval()
    fast = jit.compile(model)
    ids = _ids()
    with torch.no_grad():
        _assert_outputs_equal(fast(ids), model(ids))
    assert jit.counters.graphs == 1 and jit.counters.compile_errors == 0, jit.counters


@pytest.mark.parametrize("name", CASES)
def test_padded_batch_matches_eager(name):
    """A tokenizer's attention_mask: the first sequence left-padded, the last right-padded. With causal attention
    the left-padded sequence's first queries see no key at all; eager's attention gives zeros there (its safe
    softmax), which the NumPy code gave as NaN in Llama and Qwen2."""
    model = _model(name).eval()
    ids = _ids(batch=3)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    mask[-1, -2:] = 0
    kwargs = {"attention_mask": mask}
    if name in ("bart", "mbart"):
        kwargs["decoder_input_ids"] = ids
    fast = jit.compile(model)
    with torch.no_grad():
        want = model(ids, **kwargs)
        for _ in range(2):
            _assert_outputs_equal(fast(ids, **kwargs), want)


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n].causal])
def test_generate_with_a_compiled_forward(name):
    """`model.forward = jit.compile(model.forward)` then Hugging Face's own generate() on a padded batch: eager's
    tokens, no graph break (the output-capturing global set and reset around the model, the KV cache's new
    tensors stored after the embedding lookup, the forward's own **kwargs popped before it), and the prefill, the
    first decoding step and the dynamic one at most."""
    model = _model(name).eval()
    ids = _ids(batch=2, seq=6)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0
    settings = dict(attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
    fast = copy.deepcopy(model)
    fast.forward = jit.compile(fast.forward)
    with torch.no_grad():
        want = model.generate(ids, **settings)
        breaks, frames = jit.counters.graph_breaks, jit.counters.frames_compiled
        got = fast.generate(ids, **settings)
    assert torch.equal(got, want)
    assert jit.counters.graph_breaks == breaks
    assert jit.counters.frames_compiled - frames <= 3


@pytest.mark.parametrize("name", CASES)
def test_hidden_states_and_attentions_in_one_graph(name):
    """output_hidden_states / output_attentions: transformers installs a forward hook on every layer to collect
    them, and keeps them installed; the layers' compiled code serves each (one graph, no break)."""
    model = _model(name).eval()
    ids = _ids()
    kwargs = {"output_hidden_states": True, "output_attentions": name != "t5_encoder"}
    if name in ("bart", "mbart"):
        kwargs["decoder_input_ids"] = ids
    fast = jit.compile(model)
    breaks = jit.counters.graph_breaks
    with torch.no_grad():
        want, got = model(ids, **kwargs), fast(ids, **kwargs)
    for key in want.keys():
        w, g = want[key], got[key]
        for a, b in zip(w if isinstance(w, tuple) else (w,), g if isinstance(g, tuple) else (g,)):
            if isinstance(a, torch.Tensor):
                torch.testing.assert_close(b, a, **TOL)
    assert jit.counters.graph_breaks == breaks


@pytest.mark.parametrize("batch", [BATCH, 1])  # 1: the packed-sequence mask indexed along a batch dim of size 1
@pytest.mark.parametrize("name", CASES)
def test_eval_is_one_graph_without_breaks(name, batch):
    model = _model(name).eval()
    with torch.no_grad():
        exp = jit.explain(model, _ids(batch=batch))
    assert exp.break_reasons == [], "\n".join(str(r) for r in exp.break_reasons)
    assert exp.graph_count == 1


@pytest.mark.parametrize("name", CASES)
def test_next_call_is_a_cache_hit(name):
    model = _model(name).eval()
    fast = jit.compile(model)
    ids, same_shape = _ids(), _ids(seed=4)
    with torch.no_grad():
        fast(ids)
        assert jit.counters.frames_compiled == 1, jit.counters
        hits = jit.counters.cache_hits
        second, third = fast(ids), fast(same_shape)
        _assert_outputs_equal(second, model(ids))
        _assert_outputs_equal(third, model(same_shape))
    assert jit.counters.frames_compiled == 1 and jit.counters.recompiles == 0, jit.counters
    assert jit.counters.cache_hits == hits + 2, jit.counters


@pytest.mark.parametrize("name", CASES)
def test_train_backward_matches_eager(name):
    eager = _model(name).train()
    model = copy.deepcopy(eager)
    fast = jit.compile(model)
    ids = _ids()
    # Dropout stays on at the configs' default probabilities: seeding the same before each forward gives the
    # compiled graph the same random stream as eager, so masks, loss and gradients agree.
    losses = []
    for net in (eager, fast):
        torch.manual_seed(123)
        loss = _loss(name, net(ids))
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], **TOL)
    with_grad = 0
    for (pname, pe), pc in zip(eager.named_parameters(), model.parameters()):
        assert (pc.grad is None) == (pe.grad is None), pname  # BERT's pooler gets none from last_hidden_state
        if pe.grad is not None:
            torch.testing.assert_close(pc.grad, pe.grad, **TOL, msg=lambda m: f"{pname}: {m}")
            with_grad += 1
    assert with_grad >= len(list(eager.parameters())) - 2
    assert jit.counters.graphs >= 1 and jit.counters.compile_errors == 0, jit.counters


@pytest.mark.parametrize("name", CAUSAL)
def test_greedy_decoding_compiles_at_most_twice(name):
    model = _model(name).eval()
    fast = jit.compile(model)
    with torch.no_grad():
        expected = _greedy(model, _ids(PROMPT), NEW_TOKENS)
        got = _greedy(fast, _ids(PROMPT), NEW_TOKENS)
    assert torch.equal(got, expected)
    # The first length compiles static; the next one recompiles with the sequence dim dynamic (automatic dynamic
    # shapes, jit/dynamic.py); every later length is a cache hit of that entry. No breaks, so every call of the
    # forward is exactly one compile or one hit.
    c = jit.counters
    assert c.graph_breaks == 0 and c.compile_errors == 0, c
    assert c.frames_compiled <= 2 and c.recompiles <= 1 and c.graphs == c.frames_compiled, c
    assert c.cache_hits == NEW_TOKENS - c.frames_compiled, c


def test_compiled_linear_counts_a_graph():
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    torch.testing.assert_close(jit.compile(lin)(x), lin(x))
    assert jit.counters.graphs >= 1, jit.counters


@pytest.mark.parametrize("name", ["gpt2", "llama", "bert"])
def test_under_autocast_matches_eager_in_one_graph(name):
    # mixed precision as users run it: the whole forward under torch.autocast (Llama's rotary embedding turns it
    # off inside for float32); the casts are graph nodes, so the graph is whole and its dtypes are eager's
    model = _model(name).eval()
    fast = jit.compile(model)
    ids = _ids()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got, expected = _tensors(fast(ids)), _tensors(model(ids))
        exp = jit.explain(model, ids)
    assert exp.break_reasons == [] and exp.graph_count == 1, "\n".join(str(r) for r in exp.break_reasons)
    assert list(got) == list(expected)
    for key in expected:
        assert got[key].dtype == expected[key].dtype, key
        torch.testing.assert_close(got[key], expected[key], rtol=2e-2, atol=2e-2, msg=lambda m: f"{key}: {m}")


@pytest.mark.parametrize("cls_name", ["BartForConditionalGeneration", "MBartForConditionalGeneration"])
def test_encoder_decoder_generate_with_a_compiled_forward(cls_name):
    """generate() on an encoder-decoder LM with a compiled forward: the encoder's output comes back to the model as
    a ModelOutput from outside every step (dict's C methods on it read its items), and the cache's bookkeeping
    dict is written after the embedding lookup (not reached by an error there): eager's tokens, no break."""
    config_cls = getattr(transformers, cls_name.replace("ForConditionalGeneration", "Config"))
    torch.manual_seed(0)
    model = getattr(transformers, cls_name)(config_cls(
        vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=LAYERS, decoder_layers=LAYERS, encoder_attention_heads=HEADS,
        decoder_attention_heads=HEADS, encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, max_position_embeddings=POSITIONS)).eval()
    ids = _ids(batch=2, seq=7)
    settings = dict(max_new_tokens=5, do_sample=False)
    fast = copy.deepcopy(model)
    fast.forward = jit.compile(fast.forward)
    with torch.no_grad():
        want = model.generate(ids, **settings)
        got = fast.generate(ids, **settings)
    assert torch.equal(got, want)
    assert jit.counters.graph_breaks == 0
    # the decoder starts from one token: the empty cache, cache lengths 1 (a size of 1 stays specialized) and 2,
    # then the dynamic one
    assert 1 <= jit.counters.frames_compiled <= 4
