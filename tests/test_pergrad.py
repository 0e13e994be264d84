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


@pytest.mark.parametrize('layers, match', [([nn.ReLU()], 'not supported'), ([], 'no nn.Linear')])
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
