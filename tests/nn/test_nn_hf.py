"""swap and init_ on transformers models built from tiny configs with random weights (no downloads).

Ground truth is computed here: the number of activation modules from the config (one per feed-forward block), and
the swapped model's output against a copy whose activations were replaced by hand, module by module.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

import relulab.nn as rnn

transformers = pytest.importorskip("transformers")

SMALL = dict(vocab_size=64, bos_token_id=0, eos_token_id=1, pad_token_id=0)


def bert(act):
    config = transformers.BertConfig(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=24,
                                     max_position_embeddings=32, hidden_act=act, **SMALL)
    return transformers.BertModel(config), config.num_hidden_layers, lambda m: [
        (layer.intermediate, "intermediate_act_fn") for layer in m.encoder.layer]


def gpt2():
    config = transformers.GPT2Config(n_embd=16, n_layer=3, n_head=2, n_positions=32, **SMALL)
    return transformers.GPT2Model(config), config.n_layer, lambda m: [(block.mlp, "act") for block in m.h]


def llama():
    config = transformers.LlamaConfig(hidden_size=16, intermediate_size=24, num_hidden_layers=3, num_attention_heads=2,
                                      num_key_value_heads=1, max_position_embeddings=32, **SMALL)
    return transformers.LlamaModel(config), config.num_hidden_layers, lambda m: [
        (layer.mlp, "act_fn") for layer in m.layers]


def t5():
    config = transformers.T5Config(d_model=16, d_kv=8, d_ff=24, num_layers=2, num_decoder_layers=3, num_heads=2,
                                   feed_forward_proj="gated-gelu", decoder_start_token_id=0, **SMALL)
    # T5's gated feed-forward: one act per block, encoder (layer[1]) and decoder (layer[2])
    return transformers.T5Model(config), config.num_layers + config.num_decoder_layers, lambda m: [
        (block.layer[-1].DenseReluDense, "act") for block in list(m.encoder.block) + list(m.decoder.block)]


def clip():
    config = transformers.CLIPTextConfig(hidden_size=16, intermediate_size=24, num_hidden_layers=3,
                                         num_attention_heads=2, max_position_embeddings=32, **SMALL)
    return transformers.CLIPTextModel(config), config.num_hidden_layers, lambda m: [
        (layer.mlp, "activation_fn") for layer in m.encoder.layers]


CASES = [
    ("bert-gelu", lambda: bert("gelu"), "gelu", ("leaky_relu", {"negative_slope": 0.1})),
    ("bert-relu", lambda: bert("relu"), "relu", ("gelu", {"approximate": "tanh"})),
    ("gpt2", gpt2, "gelu", ("leaky_relu", {"negative_slope": 0.1})),
    ("llama", llama, "silu", ("relu", {})),
    ("t5-gated-gelu", t5, "gelu", ("silu", {})),
    ("clip-quick_gelu", clip, "quick_gelu", ("gelu", {})),
]


def run(model, ids):
    with torch.no_grad():
        if isinstance(model, transformers.T5Model):
            return model(input_ids=ids, decoder_input_ids=ids[:, :5]).last_hidden_state
        return model(input_ids=ids).last_hidden_state


@pytest.mark.parametrize("case_id, build, old, new", CASES, ids=[c[0] for c in CASES])
def test_swap_replaces_every_feed_forward_activation(case_id, build, old, new):
    torch.manual_seed(0)
    model, expected_count, places = build()
    model.eval()
    by_hand, original = copy.deepcopy(model), copy.deepcopy(model)
    name, params = new
    assert len(places(model)) == expected_count
    assert all(rnn.activation_name(getattr(parent, attr)) == old for parent, attr in places(model))
    assert rnn.swap(model, old, name, **params) == expected_count
    for parent, attr in places(by_hand):  # the independent replacement: set each feed-forward act by hand
        setattr(parent, attr, rnn.make(name, **params))
    assert all(type(getattr(parent, attr)) is type(rnn.make(name)) for parent, attr in places(model))
    ids = torch.randint(2, 64, (2, 7))
    torch.testing.assert_close(run(model, ids), run(by_hand, ids), rtol=0, atol=0)
    assert not torch.allclose(run(model, ids), run(original, ids))  # the swap changed what the model computes


def test_bert_pooler_tanh_is_counted_apart():
    torch.manual_seed(0)
    model, layers, _ = bert("gelu")
    assert rnn.swap(model, "tanh", "hard_tanh") == 1  # the pooler's nn.Tanh, nothing in the encoder
    assert type(model.pooler.activation) is rnn.Hardtanh


def test_init_draws_gpt2_conv1d_weights_with_their_fan_in():
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=2, n_positions=32, **SMALL)
    model = transformers.GPT2Model(config)
    conv1d = {name: module for name, module in model.named_modules() if type(module).__name__ == "Conv1D"}
    assert len(conv1d) == 4 * config.n_layer  # c_attn, attn.c_proj, c_fc, mlp.c_proj
    with torch.no_grad():
        for module in conv1d.values():
            module.bias.fill_(1.0)
    plan = rnn.init_(model, generator=torch.Generator().manual_seed(1))
    assert set(conv1d) <= set(plan)
    for name, module in conv1d.items():
        weight = module.weight
        inputs = weight.shape[0]  # Conv1D stores (in, out): x @ weight
        assert inputs == module.nx and rnn.fan_in(module) == inputs
        want = plan[name][1] / math.sqrt(inputs)
        # 64 x 192 .. 256 x 64 draws: the sample std is within 3 % of the true one
        assert weight.std().item() == pytest.approx(want, rel=0.03), name
        if weight.shape[0] != weight.shape[1]:  # the transposed fan-in would be off by sqrt(3) or 2
            assert abs(weight.std().item() - plan[name][1] / math.sqrt(weight.shape[1])) > 0.1 * want
        assert torch.count_nonzero(module.bias) == 0
    assert rnn.fan_in(model.h[0].mlp.act) is None and rnn.fan_in(model.wte) is None
