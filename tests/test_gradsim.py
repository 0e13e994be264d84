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
    gs = GradSim(model, 'all')   # every layer: the rebuild route
    for _ in range(2): w = gs.backward(F.cross_entropy(model(X), Y, reduction='none'))
    g = per_example(model, X, Y)
    assert torch.allclose(torch.cat([p.grad.flatten() for p in model.parameters()]), 2 * (w @ g), atol=1e-5)


def test_remove_and_eval_forward():
    model = net()
    gs = GradSim(model, 'all')
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
    gs = GradSim(model, 'all')                # every layer; the frozen parameters are not part of theta
    w = gs.backward(F.cross_entropy(model(X), Y, reduction='none'))
    assert gs.can_rebuild()
    assert torch.allclose(w, gradsim_weights(g @ g.T, 4., 4), atol=1e-6)
    assert model[-1].bias.grad is None and model[5].weight.grad is None
    assert torch.allclose(torch.cat([p.grad.flatten() for p in params]), w @ g, atol=1e-5)


def test_rebuild_opt_out_gives_the_same_step():
    grads = []
    for rebuild in (True, False):
        model = net(dropout=0.)
        gs = GradSim(model, 'all', rebuild=rebuild)
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
    with pytest.raises(ValueError, match='weighed already'): gs.weights(losses)


def test_empty_batch_is_a_clear_error():
    "Regression: a batch of 0 ended in ZeroDivisionError"
    model = net()
    with GradSim(model, [model[-1]]) as gs:
        for f in (gs.backward, gs.weights):
            with pytest.raises(ValueError, match='losses: empty batch'): f(F.cross_entropy(model(X[:0]), Y[:0], reduction='none'))


def test_labels_as_a_list():
    model = net(dropout=0.)
    ws = []
    for labels in (Y, Y.tolist()):
        with GradSim(model, [model[-1]], a=4., k=2) as gs: ws.append(gs.weights(F.cross_entropy(model(X), Y, reduction='none'), labels))
    assert torch.equal(*ws)


def test_tied_weights_are_refused():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 3))
    model[2].weight = model[0].weight
    with pytest.raises(ValueError, match=r"layers: 0\.weight and 2\.weight are one shared parameter"): GradSim(model, 'all')
    with pytest.raises(ValueError, match='tied weights'): GradSim(model, [model[0], model[4]])


class SeqFirst(nn.Module):
    def __init__(self):
        super().__init__(); self.pos, self.out = nn.Linear(4, 8), nn.Linear(8, 3)
    def forward(self, s): return self.out(self.pos(s).tanh().mean(0))


@pytest.mark.parametrize('rebuild', [True, False])
def test_sequence_first_with_seq_equal_to_batch(rebuild):
    "Regression: a Linear fed (T, B, F) with T == B got silently wrong weights; with batch_first=False the step is exact"
    torch.manual_seed(0)
    model, s, y = SeqFirst(), torch.randn(6, 6, 4), torch.randint(0, 3, (6,))
    g = per_example(model, s, y)
    with GradSim(model, 'all', a=4., k=2, rebuild=rebuild, batch_first=False) as gs:
        w = gs.backward(F.cross_entropy(model(s), y, reduction='none'))
    assert torch.allclose(w, gradsim_weights(g @ g.T, 4., 2), atol=1e-6)
    assert torch.allclose(torch.cat([p.grad.flatten() for p in model.parameters()]), w @ g, atol=1e-5)
    with GradSim(model, 'all', a=4., k=2) as gs:   # T != B without the argument: an error that says what to pass
        with pytest.raises(ValueError, match="Linear 'pos' saw an input of shape .*pass batch_first=False"):
            gs.backward(F.cross_entropy(model(torch.randn(5, 6, 4)), y, reduction='none'))


def agreeing_batch(m=128):
    "A batch whose gradients nearly all agree: the largest weights sums, the worst case for half precision"
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 16, generator=g).expand(m, 16) + 0.01 * torch.randn(m, 16, generator=g), torch.zeros(m, dtype=torch.long)


@pytest.mark.parametrize('layers', ['last', 'all'])
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_model(dtype, layers):
    "Regression: a float16 model at a = 8, batch 128 got every weight 0 and a zero gradient, without an error"
    x, y = agreeing_batch()
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 10))
    out = {}
    for dt in (torch.float32, dtype):
        model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 10)).to(dt)
        model.load_state_dict(ref.state_dict())
        with GradSim(model, [model[-1]] if layers == 'last' else 'all', a=8., k=4) as gs:
            w = gs.backward(F.cross_entropy(model(x.to(dt)), y, reduction='none'))
        assert w.dtype == torch.float32 and torch.isfinite(w).all() and torch.isclose(w.sum(), torch.tensor(1.))
        assert all(p.grad.dtype == dt and p.grad.abs().sum() > 0 for p in model.parameters())
        out[dt] = w, torch.cat([p.grad.float().flatten() for p in model.parameters()])
    (w32, g32), (wh, gh) = out[torch.float32], out[dtype]
    assert torch.allclose(wh, w32, rtol=0.02) and (gh - g32).norm() / g32.norm() < 0.05


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast(dtype):
    "Under autocast the layer inputs stay float32 and the outputs are half: the factors are brought to one dtype"
    x, y = agreeing_batch()
    grads = []
    for cast in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 10))
        with GradSim(model, 'all', a=8., k=4) as gs:
            with torch.autocast('cpu', dtype=dtype, enabled=cast): losses = F.cross_entropy(model(x), y, reduction='none')
            w = gs.backward(losses)
        assert torch.isfinite(w).all() and torch.isclose(w.sum(), torch.tensor(1.))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert (grads[1] - grads[0]).norm() / grads[0].norm() < 0.05
