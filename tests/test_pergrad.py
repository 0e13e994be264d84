"Per-example Gram matrices against one backward per example and against torch.func, on random layer shapes"
import random
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from torch.func import functional_call, grad, vmap
from gradsim_nb import per_example_gram
from gradsim_nb.pergrad import naive_per_example_grads, check_layers, layer_grads


def chosen_params(model, layers):
    return [p for l in check_layers(model, layers) for p in l.parameters()]


def func_grads(model, x, y, params):
    names = {id(p): n for n, p in model.named_parameters()}
    ps = {names[id(p)]: p.detach() for p in params}
    def loss(p, xi, yi): return F.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])
    gs = vmap(grad(loss), in_dims=(None, 0, 0))(ps, x, y)
    return torch.cat([g.flatten(1) for g in gs.values()], 1)


def random_conv_net(rng):
    "A random small conv net: stride, padding (number or 'same'), dilation, groups, bias all drawn at random"
    g = rng.choice([1, 2])
    c1, c2 = 2 * rng.randint(1, 3), 2 * rng.randint(1, 3)
    same = rng.random() < 0.3
    conv1 = nn.Conv2d(2, c1, rng.choice([1, 2, 3]), stride=1 if same else rng.choice([1, 2]),
                      padding='same' if same else rng.choice([0, 1, 2]), dilation=rng.choice([1, 2]), bias=rng.random() < 0.5)
    conv2 = nn.Conv2d(c1, c2, rng.choice([2, 3]), stride=rng.choice([1, 2]), padding=rng.choice([0, 1]),
                      groups=g, bias=rng.random() < 0.5)
    net = nn.Sequential(conv1, nn.ReLU(inplace=True), conv2, nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(4 * c2, 7, bias=rng.random() < 0.5), nn.ReLU(), nn.Linear(7, 5))
    return net, torch.randn(rng.randint(2, 9), 2, rng.randint(8, 12), rng.randint(8, 12))


@pytest.mark.parametrize('seed', range(8))
def test_random_shapes_match_naive_and_func(seed):
    rng = random.Random(seed); torch.manual_seed(seed)
    net, x = random_conv_net(rng)
    y = torch.randint(0, 5, (len(x),))
    for layers in [None, [net[-1]], [net[0], net[6]]]:
        params = chosen_params(net, layers)
        g = naive_per_example_grads(net, x, y, params)
        assert torch.allclose(g, func_grads(net, x, y, params), atol=1e-5)
        assert torch.allclose(per_example_gram(net, x, y, layers), g @ g.T, rtol=1e-4, atol=1e-5)


def test_linear_on_sequences_and_ghost_equals_materialised():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    net = nn.Sequential(lin, nn.Flatten(), nn.Linear(4 * 5, 3))
    x, y = torch.randn(7, 5, 6), torch.randint(0, 3, (7,))
    g = naive_per_example_grads(net, x, y, lin.parameters())
    assert torch.allclose(per_example_gram(net, x, y, [lin]), g @ g.T, rtol=1e-4, atol=1e-5)


def test_hand_example():
    "Gradients (2,0), (0,-2), (8,0): Gram [[4,0,16],[0,4,0],[16,0,64]]"
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad(): lin.weight.copy_(torch.tensor([[1., -1.]]))
    x = torch.tensor([[1., 0.], [0., 1.], [2., 0.]])
    mse = lambda out, y, reduction: F.mse_loss(out, y, reduction=reduction).sum(1)
    G = per_example_gram(lin, x, torch.zeros(3, 1), loss_fn=mse)
    assert torch.equal(G, torch.tensor([[4., 0., 16.], [0., 4., 0.], [16., 0., 64.]]))


def test_gram_leaves_grads_and_hooks_untouched():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    per_example_gram(net, torch.randn(5, 3), torch.randint(0, 2, (5,)))
    assert all(p.grad is None for p in net.parameters())
    assert not any(m._forward_hooks for m in net.modules()) and not net._forward_pre_hooks


@pytest.mark.parametrize('layers, match', [([nn.ReLU()], 'not supported'), ([], 'no trained nn.Linear')])
def test_bad_layers(layers, match):
    net = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError, match='layers') as e: per_example_gram(net, torch.randn(4, 3), torch.zeros(4).long(), layers or None) \
        if layers else per_example_gram(nn.Sequential(nn.ReLU()), torch.randn(4, 3), torch.zeros(4).long())
    assert match in str(e.value)


def test_weight_sharing_is_refused():
    lin = nn.Linear(3, 3)
    class Twice(nn.Module):
        def __init__(self): super().__init__(); self.lin = lin
        def forward(self, x): return self.lin(self.lin(x))
    with pytest.raises(ValueError, match='ran 2 times'): per_example_gram(Twice(), torch.randn(4, 3), torch.zeros(4).long())


def test_reflect_padding_is_refused():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode='reflect'), nn.Flatten())
    with pytest.raises(ValueError, match="padding_mode='zeros'"): per_example_gram(net, torch.randn(2, 1, 4, 4), torch.zeros(2).long())


def tied_net():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 3))
    net[2].weight = net[0].weight
    return net


def test_tied_weights_are_refused_naming_both_uses():
    "Regression: a Parameter held by two chosen layers gave a Gram off by 2-4% without a word"
    net, x, y = tied_net(), torch.randn(5, 4), torch.randint(0, 3, (5,))
    g = naive_per_example_grads(net, x, y)                       # model.parameters() lists the shared weight once
    with pytest.raises(ValueError, match=r"layers: 0\.weight and 2\.weight are one shared parameter .*leave '0', '2' out"):
        per_example_gram(net, x, y)
    with pytest.raises(ValueError, match='tied weights'): per_example_gram(net, x, y, [net[2]])   # its partner, unchosen, still counts
    params = list(net[4].parameters())
    g4 = naive_per_example_grads(net, x, y, params)
    assert torch.allclose(per_example_gram(net, x, y, [net[4]]), g4 @ g4.T, rtol=1e-4, atol=1e-6)   # untied layers still work
    assert g.shape[1] == sum(p.numel() for p in net.parameters())


def test_tied_to_an_unsupported_module_is_refused():
    emb, out = nn.Embedding(5, 4), nn.Linear(4, 5, bias=False)
    out.weight = emb.weight
    net = nn.Sequential(emb, nn.Flatten(), nn.Tanh(), nn.Linear(12, 4), out)
    with pytest.raises(ValueError, match=r"0\.weight and 4\.weight"): per_example_gram(net, torch.randint(0, 5, (3, 3)), torch.zeros(3).long(), [out])


class SeqFirst(nn.Module):
    "A per-position Linear on (seq, batch, features), averaged over the sequence, then a classifier"
    def __init__(self):
        super().__init__(); self.pos, self.out = nn.Linear(6, 8), nn.Linear(8, 3)
    def forward(self, s): return self.out(self.pos(s).tanh().mean(0))


def test_sequence_first_needs_batch_first_false():
    torch.manual_seed(0)
    net, y = SeqFirst(), torch.randint(0, 3, (5,))
    for layers in (None, [net.pos]):   # seq 7 != batch 5: the error names the layer and the argument, not the losses
        with pytest.raises(ValueError, match=r"layers: Linear 'pos' saw an input of shape \(7, 5, 6\).*pass batch_first=False"):
            per_example_gram(net, torch.randn(7, 5, 6), y, layers)
    for seq in (7, 5):                 # seq == batch: only the argument can tell, and then the numbers are right
        s = torch.randn(seq, 5, 6)
        g = naive_per_example_grads(net, s, y)
        assert torch.allclose(per_example_gram(net, s, y, batch_first=False), g @ g.T, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(per_example_gram(net, s, y), g @ g.T, rtol=1e-2)   # read batch first, the T == B Gram is wrong


def test_batch_first_false_leaves_batch_first_and_conv_layers_alone():
    torch.manual_seed(1)
    net, x, y = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 4), nn.Tanh(), nn.Linear(4, 3)), torch.randn(6, 2, 4, 4), torch.randint(0, 3, (6,))
    g = naive_per_example_grads(net, x, y)
    assert torch.allclose(per_example_gram(net, x, y, batch_first=False), g @ g.T, rtol=1e-4, atol=1e-6)
    net2 = nn.Sequential(nn.Linear(6, 4), nn.Flatten(), nn.Linear(20, 3))   # batch first (6, 5, 6) read as seq first: caught
    with pytest.raises(ValueError, match=r"batch dimension 1 has 5 entries, but there are 6 losses; with batch_first=False"):
        per_example_gram(net2, torch.randn(6, 5, 6), torch.randint(0, 3, (6,)), batch_first=False)


def test_a_layer_fed_a_reshaped_batch_is_named():
    class Flat(nn.Module):
        def __init__(self): super().__init__(); self.pos, self.out = nn.Linear(6, 2), nn.Linear(10, 3)
        def forward(self, x): return self.out(self.pos(x.reshape(-1, 6)).reshape(len(x), -1))
    with pytest.raises(ValueError, match=r"layers: Linear 'pos' saw an input of shape \(20, 6\), not one row per example of the 4 losses"):
        per_example_gram(Flat(), torch.randn(4, 5, 6), torch.zeros(4).long())


def test_empty_batch():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match='losses: empty batch'): per_example_gram(net, torch.randn(0, 3), torch.zeros(0).long())


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_gram_is_computed_in_float32(dtype):
    torch.manual_seed(0)
    net, x, y = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)), torch.randn(12, 8) * 30, torch.randint(0, 4, (12,))
    G = per_example_gram(net, x, y)
    Gh = per_example_gram(net.to(dtype), x.to(dtype), y)
    assert Gh.dtype == torch.float32 and torch.isfinite(Gh).all()
    assert (Gh - G).norm() / G.norm() < 0.05
