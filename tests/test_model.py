import dataclasses
import math

import pytest
import torch

from model import GPT, PRESETS, GPTConfig, load_safetensors, save_safetensors
from model.gpt import chunked_loss, sdpa_preflight
from tests.train_shards import BYTE_VOCAB, byte_documents


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(vocab_size=BYTE_VOCAB, **overrides) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.from_preset("tiny", vocab_size=vocab_size, block_size=32, **overrides))


def real_batch(batch=4, seq=32) -> torch.Tensor:
    tokens = [t for doc in byte_documents()[:20] for t in doc]
    return torch.tensor(tokens[:batch * (seq + 1)]).view(batch, seq + 1)


def test_initial_loss_is_that_of_a_uniform_guess():
    batch = real_batch()
    model = tiny()
    _, loss = model(batch[:, :-1], batch[:, 1:])
    # small init: every one of the (padded) outputs starts about equally likely
    assert abs(loss.item() - math.log(model.config.padded_vocab_size)) < 0.1


def test_attention_is_causal():
    model = tiny().eval()
    x = real_batch(1)[:, :32]
    changed = x.clone()
    changed[0, 20:] = (changed[0, 20:] + 7) % BYTE_VOCAB
    with torch.no_grad():
        before, _ = model(x, x)
        after, _ = model(changed, changed)
    assert torch.equal(before[0, :20], after[0, :20])
    assert not torch.allclose(before[0, 20:], after[0, 20:], atol=1e-3)


def test_weights_are_tied_and_residual_projections_scaled():
    model = tiny(n_layer=8)
    assert model.lm_head.weight is model.transformer.wte.weight
    proj_std = torch.cat([b.mlp.c_proj.weight.flatten() for b in model.transformer.h]).std().item()
    assert abs(proj_std - 0.02 / math.sqrt(16)) < 0.001
    assert abs(model.transformer.h[0].mlp.c_fc.weight.std().item() - 0.02) < 0.002


def test_gpt2_preset_has_124m_parameters():
    with torch.device("meta"):
        model = GPT(GPTConfig.from_preset("gpt2", vocab_size=50257, block_size=1024))
    assert model.config.padded_vocab_size == 50304
    assert 123_500_000 < model.num_params(non_embedding=False) < 125_000_000
    assert set(PRESETS) >= {"tiny", "mini", "small", "gpt2"}


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(vocab_size=10, n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="unknown model preset"):
        GPTConfig.from_preset("huge", vocab_size=10)
    with pytest.raises(ValueError, match="longer than block_size"):
        tiny()(torch.zeros(1, 33, dtype=torch.long))


def test_tiny_model_overfits_one_batch():
    model = tiny()
    batch = real_batch(batch=1)
    optimizer = model.configure_optimizer(0.0, 3e-3, (0.9, 0.95), "cpu")
    for _ in range(80):
        _, loss = model(batch[:, :-1], batch[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1


def test_optimizer_decays_matrices_only():
    model = tiny()
    decay, no_decay = model.configure_optimizer(0.1, 1e-3, (0.9, 0.95), "cpu").param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"])
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].rsplit(".", 1)[-1] for p in no_decay["params"]} == {"bias", "weight"}
    assert all(p.dim() == 1 for p in no_decay["params"])
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == model.num_params(non_embedding=False)


def test_generate_greedy_top_k_and_stop_token():
    model = tiny().eval()
    prompt = real_batch(1)[:, :5]
    greedy = model.generate(prompt, 10, temperature=0)
    assert greedy.shape == (1, 15) and torch.equal(greedy[:, :5], prompt)
    top1 = model.generate(prompt, 10, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(top1, greedy)
    first = int(greedy[0, 5])
    stopped = model.generate(prompt, 10, temperature=0, stop_token=first)
    assert stopped.shape == (1, 6)
    sampled = model.generate(prompt.repeat(3, 1), 40, generator=torch.Generator().manual_seed(0))
    assert int(sampled.max()) < BYTE_VOCAB  # padded vocabulary rows are never sampled


def test_safetensors_round_trip_gives_identical_logits(tmp_path):
    model = tiny().eval()
    save_safetensors(model, tmp_path / "m.safetensors")
    loaded = load_safetensors(tmp_path / "m.safetensors")
    batch = real_batch()
    assert loaded.config == model.config
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    assert torch.equal(model(batch[:, :-1], batch[:, 1:])[0], loaded(batch[:, :-1], batch[:, 1:])[0])


@pytest.mark.parametrize("bias", [True, False])
def test_hugging_face_export_matches_logits_over_the_true_vocabulary(tmp_path, bias):
    from transformers import GPT2LMHeadModel

    from model.hf_export import export_hf

    model = tiny(bias=bias).eval()
    export_hf(model, tmp_path / "hf")
    hf_model = GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    x = real_batch()[:, :-1]
    with torch.no_grad():
        ours, _ = model(x, x)
        theirs = hf_model(x).logits
    # GPT-2 gets the real rows only: the 63 padding ids do not exist there, so they cannot be sampled
    assert hf_model.config.vocab_size == BYTE_VOCAB and theirs.shape[-1] == BYTE_VOCAB
    assert torch.allclose(ours[..., :BYTE_VOCAB], theirs, atol=1e-4)


def plain_and_chunked(chunk: int, dtype=torch.float64) -> tuple[GPT, GPT]:
    plain = tiny().to(dtype)
    chunked = GPT(dataclasses.replace(plain.config, loss_chunk=chunk)).to(dtype)
    chunked.load_state_dict(plain.state_dict())
    return plain, chunked


def test_chunked_loss_matches_plain_loss_and_gradients():
    batch = real_batch(batch=3)
    x, y = batch[:, :-1], batch[:, 1:].clone()
    y[0, :7] = -1  # ignored positions count for neither loss nor gradient
    plain, chunked = plain_and_chunked(chunk=10)  # 96 rows: the last chunk is a partial one
    plain_logits, plain_loss = plain(x, y)
    chunked_logits, chunked_loss = chunked(x, y)
    assert chunked_logits is None and plain_logits.shape == (3, 32, plain.config.padded_vocab_size)
    plain_loss.backward()
    chunked_loss.backward()
    assert abs(plain_loss.item() - chunked_loss.item()) < 1e-12
    for (name, p), q in zip(plain.named_parameters(), chunked.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=0, atol=1e-12), name
    with torch.no_grad():  # evaluation takes the gradient-free path
        assert abs(chunked(x, y)[1].item() - plain_loss.item()) < 1e-12


def test_chunked_loss_of_an_all_ignored_batch_is_nan_with_zero_gradients_as_plain():
    # as F.cross_entropy does: a micro-batch of masked targets (fine-tuning prompts) must not poison the weights
    hidden = torch.randn(6, 4, requires_grad=True)
    weight = torch.randn(10, 4, requires_grad=True)
    loss = chunked_loss(hidden, weight, torch.full((6,), -1), chunk=4)
    loss.backward()
    assert loss.isnan() and not hidden.grad.any() and not weight.grad.any()


def test_chunked_loss_under_bf16_autocast_stays_close_to_plain():
    batch = real_batch(batch=2)
    plain, chunked = plain_and_chunked(chunk=16, dtype=torch.float32)
    losses = []
    for model in (plain, chunked):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        losses.append(loss.item())
    assert abs(losses[0] - losses[1]) < 0.02
    head_grads = [m.lm_head.weight.grad for m in (plain, chunked)]
    assert head_grads[1].dtype == torch.float32
    assert (head_grads[0] - head_grads[1]).norm() / head_grads[0].norm() < 0.02


def test_sdpa_backend_switch_and_preflight():
    x = real_batch(batch=2)[:, :-1]
    auto = tiny().eval()
    math_backend = GPT(dataclasses.replace(auto.config, sdpa_backend="math")).eval()
    math_backend.load_state_dict(auto.state_dict())
    with torch.no_grad():
        assert torch.allclose(auto(x, x)[0], math_backend(x, x)[0], atol=1e-5)
    with pytest.raises(ValueError, match="sdpa_backend must be one of"):
        GPTConfig(vocab_size=10, sdpa_backend="fast")
    report = sdpa_preflight("cpu", torch.float32, n_head=2, head_dim=8, seq=16, batch=1)
    assert set(report) == {"flash", "cudnn", "efficient", "math"} and report["math"] == "ok"
    # cuDNN kernels exist only on CUDA: the report gives the reason in one line instead of raising
    assert report["cudnn"] != "ok" and "\n" not in report["cudnn"]


def test_speed_switches_cause_no_graph_breaks():
    model = tiny(loss_chunk=24, sdpa_backend="math", bias=False)
    batch = real_batch(batch=2)
    explained = torch._dynamo.explain(model)(batch[:, :-1], batch[:, 1:])
    assert explained.graph_break_count == 0, explained.break_reasons
