"GradSim's update is exactly sum_i w_i grad(loss_i), on models with BatchNorm, dropout and in-place ReLU"
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from gradsim_nb import GradSim, gradsim_weights
from gradsim_nb.pergrad import check_layers


def net(bn=False, dropout=0.3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4) if bn else nn.Identity(), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 16), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(16, 5))


def per_example(model, x, y, seed=1):
    torch.manual_seed(seed)
    losses = F.cross_entropy(model(x), y, reduction='none')
    params = list(model.parameters())
    return torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(l, params, retain_graph=True)]) for l in losses])


def chosen_mask(model, layers):
    ids = {id(p) for l in layers for p in l.parameters()}
    return torch.cat([torch.full((p.numel(),), id(p) in ids) for p in model.parameters()])


X, Y = torch.randn(10, 3, 8, 8), torch.randint(0, 5, (10,))


@pytest.mark.parametrize('bn', [False, True])
@pytest.mark.parametrize('which', ['last', 'all', 'first_and_last'])
def test_backward_is_weighted_sum(bn, which):
    model = net(bn)
    layers = {'last': [model[-1]], 'all': check_layers(model), 'first_and_last': [model[0], model[-1]]}[which]
    g = per_example(model, X, Y)
    gs = GradSim(model, layers, a=4., k=3)
    torch.manual_seed(1)
    w = gs.backward(F.cross_entropy(model(X), Y, reduction='none'))
    update = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert torch.allclose(update, w @ g, atol=1e-5)
    if not (bn and which != 'last'):   # a layer before a training-mode BatchNorm gets an approximate Gram (documented)
        gm = g[:, chosen_mask(model, layers)]
        assert torch.allclose(w, gradsim_weights(gm @ gm.T, 4., 3), atol=1e-6)
    assert gs.can_rebuild() == (which == 'all' and not bn)


def test_weights_then_weighted_backward():
    model = net()
    g = per_example(model, X, Y)
    with GradSim(model, [model[-1]], a=8., k=2) as gs:
        torch.manual_seed(1)
        losses = F.cross_entropy(model(X), Y, reduction='none')
        w = gs.weights(losses, labels=Y)
        (w * losses).sum().backward()
    gm = g[:, chosen_mask(model, [model[-1]])]
    assert torch.allclose(w, gradsim_weights(gm @ gm.T, 8., 2, Y), atol=1e-6)
    assert torch.allclose(torch.cat([p.grad.flatten() for p in model.parameters()]), w @ g, atol=1e-5)


def test_accumulates_like_backward():
    model = net(dropout=0.)
    gs = GradSim(model)   # every layer: the rebuild route
    for _ in range(2): w = gs.backward(F.cross_entropy(model(X), Y, reduction='none'))
    g = per_example(model, X, Y)
    assert torch.allclose(torch.cat([p.grad.flatten() for p in model.parameters()]), 2 * (w @ g), atol=1e-5)


def test_remove_and_eval_forward():
    model = net()
    gs = GradSim(model)
    with torch.no_grad(): model(X)            # evaluation saves nothing
    assert all(len(v) == 0 for v in gs.taps.seen.values())
    gs.remove()
    assert not any(m._forward_hooks for m in model.modules()) and not model._forward_pre_hooks


def test_bad_input():
    model = net()
    with pytest.raises(ValueError, match='k:'): GradSim(model, k=0)
    with pytest.raises(ValueError, match='a:'): GradSim(model, a=-0.5)
    with pytest.raises(ValueError, match='layers: ReLU'): GradSim(model, layers=[model[2]])
    gs = GradSim(model, [model[-1]])
    out = model(X)
    with pytest.raises(ValueError, match=r"losses: expected one loss per example, shape \(10,\), got \(\)"):
        gs.backward(F.cross_entropy(out, Y))
    with pytest.raises(ValueError, match='reduction'): gs.weights(F.cross_entropy(out[:4], Y[:4], reduction='none'))
    bad = F.cross_entropy(out, Y, reduction='none') * torch.tensor([float('nan'), float('inf')] + [1.] * 8)
    with pytest.raises(ValueError, match='2 of 10 losses are NaN or inf'): gs.backward(bad)


def test_batch_of_one():
    model = net()
    with GradSim(model, [model[-1]]) as gs:
        assert torch.equal(gs.backward(F.cross_entropy(model(X[:1]), Y[:1], reduction='none')), torch.ones(1))


def test_frozen_parameters_are_left_alone_and_out_of_the_gram():
    model = net(dropout=0.)
    model[-1].bias.requires_grad_(False)
    model[5].weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    losses = F.cross_entropy(model(X), Y, reduction='none')
    g = torch.stack([torch.cat([t.flatten() for t in torch.autograd.grad(l, params, retain_graph=True)]) for l in losses])
    gs = GradSim(model)                       # every layer; the frozen parameters are not part of theta
    w = gs.backward(F.cross_entropy(model(X), Y, reduction='none'))
    assert gs.can_rebuild()
    assert torch.allclose(w, gradsim_weights(g @ g.T, 4., 4), atol=1e-6)
    assert model[-1].bias.grad is None and model[5].weight.grad is None
    assert torch.allclose(torch.cat([p.grad.flatten() for p in params]), w @ g, atol=1e-5)


def test_rebuild_opt_out_gives_the_same_step():
    grads = []
    for rebuild in (True, False):
        model = net(dropout=0.)
        gs = GradSim(model, rebuild=rebuild)
        assert gs.can_rebuild() == rebuild
        gs.backward(F.cross_entropy(model(X), Y, reduction='none'))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(*grads, atol=1e-6)


def test_numpy_scalars_and_consumed_forward():
    import numpy as np
    model = net()
    gs = GradSim(model, [model[-1]], a=np.float64(4.0), k=np.int64(3))
    losses = F.cross_entropy(model(X), Y, reduction='none')
    gs.weights(losses)
    with pytest.raises(ValueError, match='has not run with gradients enabled'): gs.weights(losses)
