"Issue 28: GradSim in a researcher's own training loop, against an independent float64 reference: autograd's step or a clear refusal"
import os, warnings
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from gradsim_nb.gradsim import GradSim
from gradsim_nb.pergrad import per_example_gram
from gradsim_nb.weights import gradsim_weights

X, Y = torch.randn(10, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64), torch.arange(10) % 3


@pytest.fixture(autouse=True)
def float64():
    "The reference and the library in float64, so that a difference is the method's, not rounding; then as before"
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def autograd_step(model, losses_of, w):
    "What (w * losses).sum().backward() leaves in .grad, for the given weights"
    model.zero_grad(); (w * losses_of(model)).sum().backward()
    return grads(model)


def reference_weights(model, losses_of, params, a=4.0, k=4):
    "Weights from per-example gradients by a loop over the examples, the formula applied by hand"
    losses = losses_of(model)
    g = torch.stack([torch.cat([t.flatten() for t in torch.autograd.grad(l, params, retain_graph=True)]) for l in losses])
    return gradsim_weights(g @ g.T, a, k)


def gradsim_step(model, losses_of, layers='all', **kw):
    model.zero_grad()
    with GradSim(model, layers, **kw) as gs: w = gs.backward(losses_of(model))
    return w, grads(model)


def test_the_default_is_the_last_layer_as_in_the_book():
    m = mlp()
    with GradSim(m) as gs: assert gs.layers == [m[2]]
    ce = lambda m: F.cross_entropy(m(X), Y, reduction='none')
    w, g = gradsim_step(m, ce, 'last')
    assert torch.allclose(w, reference_weights(m, ce, list(m[2].parameters())), atol=1e-12)
    assert torch.allclose(g, autograd_step(m, ce, w), atol=1e-12)


def test_a_penalty_on_the_weights_reaches_the_step():
    "An L2 term added per example: the rebuild route would drop its gradient; the step must be autograd's"
    pen = lambda m: F.cross_entropy(m(X), Y, reduction='none') + 0.1 * m[0].weight.pow(2).sum()
    m = mlp()
    with pytest.warns(UserWarning, match='other than through'): w, g = gradsim_step(m, pen)
    assert torch.allclose(g, autograd_step(m, pen, w), atol=1e-12)


def test_two_forward_calls_are_refused_naming_the_cause():
    two = lambda m: F.cross_entropy(m(X), Y, reduction='none') + F.cross_entropy(m(X + 0.1), Y, reduction='none')
    m = mlp()
    with GradSim(m, 'all') as gs, pytest.raises(ValueError, match='losses: they use an earlier forward pass as well as the last one'): gs.backward(two(m))
    with GradSim(m, 'all') as gs:   # a forward under no_grad in between (an evaluation) changes nothing
        losses = F.cross_entropy(m(X), Y, reduction='none')
        with torch.no_grad(): m(X)
        w = gs.backward(losses)
        with pytest.raises(ValueError, match='weighed already'): gs.backward(losses)   # a second backward on the same forward
    assert torch.allclose(grads(m), autograd_step(m, lambda m: F.cross_entropy(m(X), Y, reduction='none'), w), atol=1e-12)


@pytest.mark.parametrize('how', ['parametrize', 'weight_norm'])
def test_parametrised_weights_get_their_gradient(how):
    m = mlp()
    if how == 'parametrize':
        class Doubled(nn.Module):
            def forward(self, w): return 2 * w
        torch.nn.utils.parametrize.register_parametrization(m[0], 'weight', Doubled())
    else: m[0] = torch.nn.utils.parametrizations.weight_norm(m[0])
    ce = lambda m: F.cross_entropy(m(X), Y, reduction='none')
    w, g = gradsim_step(m, ce)
    assert all(p.grad is not None for p in m.parameters())   # the real parameters, not the computed weight
    assert torch.allclose(g, autograd_step(m, ce, w), atol=1e-12)


def test_post_accumulate_grad_hooks_fire():
    m, fired = mlp(), []
    m[0].weight.register_post_accumulate_grad_hook(lambda p: fired.append(1))
    ce = lambda m: F.cross_entropy(m(X), Y, reduction='none')
    w, g = gradsim_step(m, ce)
    assert fired and torch.allclose(g, autograd_step(m, ce, w), atol=1e-12)


def bn_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 3))


def test_batch_statistics_after_a_chosen_layer_are_said():
    m = bn_net()
    ce = lambda m: F.cross_entropy(m(X), Y, reduction='none')
    with pytest.warns(UserWarning, match="BatchNorm1d '1' normalises by batch statistics after a chosen layer"): gradsim_step(m, ce)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        gradsim_step(m, ce, 'last')   # the last layer comes after it: exact, no warning
    with pytest.raises(ValueError, match="model: BatchNorm1d '1' normalises by batch statistics after a chosen layer"):
        per_example_gram(m, X, Y, 'all')
    stats = [b.clone() for b in m[1].buffers()]
    state = torch.get_rng_state()
    G = per_example_gram(m, X, Y, 'all', approx_batchnorm=True)
    assert G.shape == (10, 10) and all(torch.equal(a, b) for a, b in zip(stats, m[1].buffers()))   # running statistics unchanged
    assert torch.equal(state, torch.get_rng_state())                                                  # dropout drew from a fork


def test_errors_name_the_layer_and_the_cause():
    m = mlp()
    with pytest.raises(ValueError, match="layers: Linear '2' is listed twice"): GradSim(m, [m[2], m[2]])
    with pytest.raises(ValueError, match="torch.compile'd model"): GradSim(torch.compile(m))
    with pytest.raises(ValueError, match='loss_fn: mse_loss returned shape \\(10, 3\\), more than one value per example'):
        per_example_gram(m, X, F.one_hot(Y, 3).double(), loss_fn=F.mse_loss)
    with pytest.raises(ValueError, match='loss_fn: mse_loss failed on outputs of shape \\(10, 3\\) and targets of shape \\(10,\\)'):
        per_example_gram(m, X, Y, loss_fn=F.mse_loss)


class TinyTransformer(nn.Module):
    "Embedding, one encoder layer (self-attention), mean pooling, a linear head: a transformer classifier"
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(20, 16)
        self.enc = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 3)
    def forward(self, t): return self.head(self.enc(self.emb(t)).mean(1))


def test_a_transformer_classifier():
    model, toks = TinyTransformer(), torch.randint(0, 20, (8, 5), generator=torch.Generator().manual_seed(1))
    ce = lambda m: F.cross_entropy(m(toks), Y[:8], reduction='none')
    w, g = gradsim_step(model, ce, 'last')   # the head: exact
    assert torch.allclose(w, reference_weights(model, ce, list(model.head.parameters())), atol=1e-10)
    assert torch.allclose(g, autograd_step(model, ce, w), atol=1e-10)
    with pytest.warns(UserWarning) as rec: w, g = gradsim_step(model, ce, 'all')
    said = ' '.join(str(r.message) for r in rec)
    assert "not compared: emb.weight" in said and "'enc.self_attn.out_proj' did not run as a module" in said
    assert torch.allclose(g, autograd_step(model, ce, w), atol=1e-10)   # attention's weights still get autograd's gradient


def test_a_torchvision_resnet_head_in_train_mode():
    import torchvision
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=3)
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ce = lambda m: F.cross_entropy(m(x), Y[:6], reduction='none')
    with GradSim(net, 'last') as gs: assert gs.layers == [net.fc]
    w, g = gradsim_step(net, ce, 'last')   # BatchNorm comes before the head: exact in train mode
    assert torch.allclose(w, reference_weights(net, ce, list(net.fc.parameters())), atol=1e-10)
    assert torch.allclose(g, autograd_step(net, ce, w), atol=1e-8)


def _ddp_rank(rank, world, port, out):
    import torch.distributed as dist
    torch.set_default_dtype(torch.float64)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        for layers in ('last', 'all'):
            ddp = nn.parallel.DistributedDataParallel(mlp())
            xr, yr = X[rank * 5:(rank + 1) * 5], Y[rank * 5:(rank + 1) * 5]
            with GradSim(ddp, layers, k=2) as gs: w = gs.backward(F.cross_entropy(ddp(xr), yr, reduction='none'))
            torch.save((w, grads(ddp.module)), f'{out}/{layers}-{rank}.pt')
    finally: dist.destroy_process_group()


def test_ddp_two_gloo_ranks_average_each_ranks_weighted_step(tmp_path):
    "Each rank weighs its own batch; DDP averages the ranks' steps: mean over ranks of sum_i w_i g_i"
    import socket, torch.multiprocessing as mp
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    mp.spawn(_ddp_rank, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    for layers in ('last', 'all'):
        expect = []
        for rank in range(2):
            m, w = mlp(), torch.load(tmp_path / f'{layers}-{rank}.pt')[0]
            ce = lambda m: F.cross_entropy(m(X[rank * 5:(rank + 1) * 5]), Y[rank * 5:(rank + 1) * 5], reduction='none')
            params = list(m[2].parameters()) if layers == 'last' else list(m.parameters())
            assert torch.allclose(w, reference_weights(m, ce, params, k=2), atol=1e-12)
            expect.append(autograd_step(m, ce, w))
        for rank in range(2):
            assert torch.allclose(torch.load(tmp_path / f'{layers}-{rank}.pt')[1], (expect[0] + expect[1]) / 2, atol=1e-12)


def test_a_forward_whose_losses_are_not_weighed_is_harmless():
    "README's pattern: per_example_gram (its own forward) while a GradSim is attached, then the step's forward"
    m = mlp()
    ce = lambda m: F.cross_entropy(m(X), Y, reduction='none')
    with GradSim(m, 'all') as gs:
        G = per_example_gram(m, X, Y, 'all')
        m(X + 1.0)                                  # a forward with gradients whose losses nobody uses
        w = gs.backward(ce(m))
    assert torch.allclose(w, gradsim_weights(G, 4.0, 4), atol=1e-12)
    assert torch.allclose(grads(m), autograd_step(m, ce, w), atol=1e-12)
