import pytest
import torch

from model.gpt import GPT, GPTConfig
from model.lora import LoRAError, LoRALinear, apply_lora, count_parameters, merge_lora, parse_targets

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()


def tokens() -> torch.Tensor:
    return torch.randint(0, 50, (3, 12), generator=torch.Generator().manual_seed(1))


def full_logits(model: GPT) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens(), tokens())[0]


def test_fresh_adapters_change_nothing_and_freeze_the_base():
    model = tiny_gpt()
    before = full_logits(model)
    wrapped = apply_lora(model, rank=4, alpha=8, targets="attn,mlp")
    assert len(wrapped) == 2 * 4 and all(isinstance(model.get_submodule(n), LoRALinear) for n in wrapped)
    assert torch.equal(full_logits(model), before)
    trainable, total = count_parameters(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(n.endswith((".lora_a", ".lora_b")) for n in names)
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad) < total / 4


def test_merged_model_gives_the_logits_of_base_plus_adapters():
    model = tiny_gpt()
    apply_lora(model, rank=3, alpha=6, targets="attn,mlp")
    with torch.no_grad():  # what training would do: B leaves zero
        for name, param in model.named_parameters():
            if name.endswith(".lora_b"):
                param.normal_(std=0.1)
    adapted = full_logits(model)
    assert not torch.allclose(adapted, full_logits(tiny_gpt()), atol=1e-3)
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert sorted(model.state_dict()) == sorted(tiny_gpt().state_dict())
    torch.testing.assert_close(full_logits(model), adapted, atol=1e-5, rtol=1e-5)


def test_only_attention_targets_leave_the_mlp_plain():
    model = tiny_gpt()
    apply_lora(model, rank=2, alpha=2, targets=["attn"])
    assert isinstance(model.transformer.h[0].attn.c_attn, LoRALinear)
    assert isinstance(model.transformer.h[0].mlp.c_fc, torch.nn.Linear)
    assert not isinstance(model.transformer.h[0].mlp.c_fc, LoRALinear)


def test_rank_larger_than_the_layer_is_refused():
    with pytest.raises(LoRAError, match="rank 17 does not fit a 16 -> 48 layer"):
        apply_lora(tiny_gpt(), rank=17, alpha=1, targets="attn")


def test_unknown_target_is_refused():
    with pytest.raises(LoRAError, match="lora_targets must name some of attn, mlp; got ffn"):
        parse_targets("ffn")
