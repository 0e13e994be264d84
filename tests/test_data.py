"Data loading and label noise: layouts, errors, cache, exact noise rates"
import os, tarfile, warnings
from pathlib import Path
import pytest, torch
from torchvision.io import encode_jpeg
from gradsim_nb import data as D

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10-jpeg.tar.gz'


def tiny_image_folder(root, classes=D.CLASSES, n=2):
    for split in ('train', 'test'):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                (root / split / c / f'{i:04d}.jpg').write_bytes(encode_jpeg(torch.full((3, 32, 32), 20 * i, dtype=torch.uint8)).numpy().tobytes())
    return root


def test_decode_folder_and_tarball(tmp_path):
    root = tiny_image_folder(tmp_path / 'cifar10-jpeg')
    d = D.decode_image_folder(root)
    assert d['train'][0].shape == (20, 3, 32, 32) and d['train'][0].dtype == torch.uint8
    assert d['train'][1].tolist() == [c for c in range(10) for _ in range(2)]      # class-major, sorted
    tgz = tmp_path / 'c.tar.gz'
    with tarfile.open(tgz, 'w:gz') as tf: tf.add(root, arcname='cifar10-jpeg')
    dt = D.decode_image_folder(tgz)
    assert torch.equal(dt['train'][0], d['train'][0]) and torch.equal(dt['test'][1], d['test'][1])


def test_wrong_layout_says_what_to_do(tmp_path):
    root = tiny_image_folder(tmp_path / 'x', classes=D.CLASSES[:3])
    with pytest.raises(ValueError, match='ImageFolder layout'): D.decode_image_folder(root)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='data: .*GRADSIM_DATA'): D.load_cifar10(tmp_path / 'empty', cache=tmp_path / 'cache')


def test_nothing_found_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.delenv('GRADSIM_DATA', raising=False)
    def offline(root, download): raise RuntimeError('no network')
    monkeypatch.setattr(D, 'load_torchvision', offline)
    with pytest.raises(FileNotFoundError) as e: D.load_cifar10(cache=tmp_path)
    msg = str(e.value)
    assert 'no cache at' in msg and 'GRADSIM_DATA is not set' in msg and 'download' in msg


@pytest.mark.skipif(not SHARED.exists(), reason='needs the offline CIFAR-10 copy in ../shared/data')
def test_real_data_and_corrupt_cache_is_rebuilt(tmp_path):
    (tmp_path / 'cifar10-imagefolder.pt').write_bytes(b'not a cache')
    with pytest.warns(UserWarning, match='corrupt'): d = D.load_cifar10(SHARED, cache=tmp_path)
    assert d['train'][0].shape == (50000, 3, 32, 32) and d['test'][1].bincount().tolist() == [1000] * 10
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        d2 = D.load_cifar10(SHARED, cache=tmp_path)   # now from the cache, silently
    assert torch.equal(d2['test'][0], d['test'][0])


@pytest.mark.parametrize('kind', D.NOISE_KINDS)
def test_noise_rates(kind):
    y = torch.arange(10).repeat(1000)
    yn = D.add_label_noise(y, 0.4, kind, seed=3)
    wrong = (yn != y).sum().item()
    if kind == 'ren': assert 3300 < wrong < 3900          # about 0.4 * 9/10 of 10,000
    else: assert wrong == 4000                             # exactly round(r N) changed
    if kind == 'pair': assert ((yn - y) % 10)[yn != y].eq(1).all()
    assert torch.equal(yn, D.add_label_noise(y, 0.4, kind, seed=3))   # seeded


def test_noise_bad_input():
    with pytest.raises(ValueError, match='kind: unknown noise type'): D.add_label_noise(torch.zeros(3).long(), .2, 'gaussian')
    with pytest.raises(ValueError, match=r'rate: .*\[0, 1\)'): D.add_label_noise(torch.zeros(3).long(), 1.0)


def test_noise_is_independent_of_batch_order_and_subset():
    "Regression: one seed once drew the flipped labels and the first epoch's batch order from the same stream"
    y = torch.arange(10).repeat(5000)
    flipped = D.add_label_noise(y, 0.4, seed=0) != y
    first_batches = torch.cat(D.batch_indices(len(y), 128, D.rng('batches', 0))[:50])
    assert 0.35 < flipped[first_batches].float().mean() < 0.45
    nd = D.NoisyData(y.view(-1, 1, 1, 1).to(torch.uint8), D.add_label_noise(y, 0.4, seed=0), y, y[:10], y[:10])
    assert 0.35 < nd.subset(2000).noise < 0.45


def test_class_major_positions():
    y = torch.tensor([2, 0, 2, 1, 0])
    pos = D.class_major_positions(y)
    assert pos.tolist() == [3, 0, 4, 2, 1]
    assert torch.equal(torch.empty_like(y).scatter_(0, pos, y), y.sort(stable=True).values)


@pytest.mark.skipif(not SHARED.exists(), reason='needs the offline CIFAR-10 copy and CIFAR-10N labels in ../shared/data')
def test_cifar10n_labels_line_up_with_the_images():
    nd = D.cifar10n('worse', data=SHARED)          # raises unless CIFAR-10N's clean labels match the copy's, position by position
    assert abs(nd.noise - 0.402) < 0.001 and abs(D.cifar10n('aggre', data=SHARED).noise - 0.090) < 0.001
    with pytest.raises(ValueError, match='label_set'): D.cifar10n('best', data=SHARED)
