"The suspects CSV names the image a person should look at"
import csv, tarfile
from pathlib import Path
import pytest, torch
from torchvision.io import decode_jpeg
from gradsim_nb import data as D
from gradsim_nb.suspects_cli import image_names, write_suspects, suspects_main

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10-jpeg.tar.gz'


def test_names_need_the_full_training_set_in_a_known_order():
    t = torch.arange(50000) % 10
    d = D.NoisyData(torch.zeros(1), t, t, None, None, 'original')
    assert image_names(d)[7] == 'CIFAR10(train=True)[7]'
    assert image_names(D.NoisyData(torch.zeros(1), t, t, None, None, 'class-major')) is None   # labels not sorted: not a class-major copy
    assert image_names(D.NoisyData(torch.zeros(1), t[:100], t[:100], None, None, 'original')) is None


@pytest.mark.skipif(not SHARED.exists(), reason='needs the offline CIFAR-10 copy in ../shared/data')
def test_a_named_file_holds_the_image_at_that_index(tmp_path):
    d = D.noisy_cifar10(0.4, data=SHARED, verbose=False)
    names = image_names(d)
    idx = [0, 4999, 5000, 23456, 49999]
    with tarfile.open(SHARED) as tf:
        for i in idx:
            raw = tf.extractfile(f'cifar10-jpeg/{names[i]}').read()
            assert torch.equal(decode_jpeg(torch.frombuffer(bytearray(raw), dtype=torch.uint8)), d.x[i]), names[i]
    f = write_suspects(tmp_path / 's.csv', torch.arange(50000.), d.y, top=2, names=names)
    rows = list(csv.DictReader(open(f)))
    assert [r['image'] for r in rows] == [names[49999], names[49998]] and rows[0]['index'] == '49999'


def toy_data(rate, kind, seed, data, cache, verbose):
    "200 random training images, 50 test images"
    g = torch.Generator().manual_seed(seed)
    true = torch.randint(0, 10, (200,), generator=g)
    x = torch.randint(0, 255, (200, 3, 32, 32), dtype=torch.uint8, generator=g)
    return D.NoisyData(x, D.add_label_noise(true, rate, kind, seed=seed), true, x[:50], true[:50])


@pytest.mark.parametrize('argv, msg', [(['--subset', '500,100,7'], '--subset: expected N_TRAIN,N_TEST, two positive integers'),
                                       (['--subset', '0,0'], '--subset: expected N_TRAIN,N_TEST, two positive integers'),
                                       (['--subset', '5'], '--subset: expected N_TRAIN,N_TEST, two positive integers'),
                                       (['--top', '0'], '--top must be at least 1, got 0'), (['--top', '-5'], '--top must be at least 1, got -5'),
                                       (['--subset', '300,10'], 'subset: asked for 300 training and 10 test examples, but the data has 200 and 50')])
def test_suspects_refuses_arguments_that_would_write_nonsense(argv, msg, tmp_path, monkeypatch):
    from gradsim_nb import runs
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)
    monkeypatch.setattr(runs, 'train', lambda *a, **k: pytest.fail('trained with arguments it should refuse'))
    with pytest.raises(SystemExit) as e: suspects_main(argv + ['--epochs', '1', '--out', str(tmp_path), '--csv', str(tmp_path / 's.csv')])
    assert str(e.value).startswith('gradsim-suspects: error: ') and msg in str(e.value) and '\n' not in str(e.value)
    assert not (tmp_path / 's.csv').exists()


def test_suspects_writes_the_run_and_csv_of_one_subset(tmp_path, monkeypatch, capsys):
    from gradsim_nb import runs
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)
    suspects_main(['--subset', '100,20', '--epochs', '1', '--top', '500', '--out', str(tmp_path), '--csv', str(tmp_path / 's.csv')])
    assert len((tmp_path / 's.csv').read_text().splitlines()) == 1 + 100 and ': 100 examples' in capsys.readouterr().out   # --top past the end: all 100


def test_suspects_by_loss_ranks_by_the_mean_loss_of_a_plain_run(tmp_path, monkeypatch):
    "--score loss trains a plain loss-tracked run (20 epochs unless told) and writes its examples by mean loss, largest first"
    import json
    from gradsim_nb import runs
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)
    suspects_main(['--score', 'loss', '--out', str(tmp_path), '--csv', str(tmp_path / 's.csv')])
    run = json.loads((tmp_path / 'vanilla_symmetric0.4_e20_losstracked_seed0.json').read_text())   # the default epochs for the loss
    rows = list(csv.DictReader((tmp_path / 's.csv').read_text().splitlines()))
    loss = torch.tensor(run['example_loss'])
    assert len(rows) == len(loss) and int(rows[0]['index']) == int(loss.argmax()) and float(rows[-1]['suspicion']) == pytest.approx(float(loss.min()), abs=1e-5)
