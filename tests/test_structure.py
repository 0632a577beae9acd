"""How the package holds together: importing never fails on a bad setting; shared helpers behave as their users need;
lesson 08 reaches its appendices by plain imports (the rules of the import graph are in test_layering.py).

The device test runs in a fresh Python process, because `def_device` is read once, at import.
"""
import os, subprocess, sys, textwrap
from collections import defaultdict, namedtuple
from pathlib import Path
import pytest
import torch
from miniai.conv import tree_map, to_device
from miniai.training import check_count, pick_dl

ROOT = Path(__file__).resolve().parent.parent

def _python(code, **env):
    "Run `code` in a fresh interpreter with `env` added to the environment; return the completed process"
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})

@pytest.mark.slow
@pytest.mark.parametrize('bad', ['gpu', 'cuda:x'])
def test_bad_device_env_imports_then_fails_where_used(bad):
    r = _python('''
        import torch
        import miniai.conv, miniai.learner  # importing works despite the bad setting
        from miniai.conv import def_device, to_device
        from miniai.learner import DeviceCB, Learner, TrainCB
        print('def_device', repr(def_device))
        for use in (lambda: to_device(torch.ones(2)),
                    lambda: Learner(torch.nn.Linear(2, 2), ([(torch.ones(1, 2), torch.zeros(1, dtype=torch.long))], []),
                                    torch.nn.functional.cross_entropy, cbs=[DeviceCB(), TrainCB()]).fit(1)):
            try: use()
            except ValueError as e: print('ERROR', e)
            else: print('NO ERROR')
        ''', MINIAI_DEVICE=bad)
    assert r.returncode == 0, r.stderr
    assert f'def_device {bad!r}' in r.stdout
    errors = [l for l in r.stdout.splitlines() if l.startswith(('ERROR', 'NO ERROR'))]
    assert len(errors) == 2, r.stdout
    for line in errors:  # both uses: the variable named with its value, and what to choose instead
        assert line.startswith(f'ERROR MINIAI_DEVICE={bad!r}: ') and 'Choose one of: ' in line and 'cpu' in line, line

@pytest.mark.slow
def test_good_device_env_is_used():
    r = _python('from miniai.conv import def_device; print(def_device)', MINIAI_DEVICE='cpu')
    assert r.returncode == 0 and r.stdout.strip() == 'cpu', r.stderr

def test_tree_map_keeps_containers_and_collects():
    Pair = namedtuple('Pair', 'a b')
    x = {'p': Pair(torch.ones(2), 'name'), 'l': [torch.zeros(1), (torch.ones(1), 3)], 'd': defaultdict(list, t=torch.ones(1))}
    y = tree_map(lambda t: t + 1, x)
    assert type(y['p']) is Pair and y['p'].b == 'name' and torch.equal(y['p'].a, torch.full((2,), 2.))
    assert type(y['l'][1]) is tuple and y['l'][1][1] == 3 and torch.equal(y['l'][0], torch.ones(1))
    assert type(y['d']) is defaultdict and y['d']['missing'] == []
    assert torch.equal(x['l'][0], torch.zeros(1))  # the input is unchanged
    found = []; tree_map(found.append, x)
    assert [t.tolist() for t in found] == [[1., 1.], [0.], [1.], [1.]]
    assert to_device(x, 'meta')['p'].a.device.type == 'meta'

def test_pick_dl_and_check_count():
    class DLs:
        train, valid = 'T', 'V'
    assert (pick_dl(DLs()), pick_dl(DLs(), False), pick_dl(('a', 'b')), pick_dl(('a', 'b'), train=False)) == ('T', 'V', 'a', 'b')
    assert check_count('f', 'n', 3) == 3
    for bad in (0, -1, 2.0, True, '3'):
        with pytest.raises(ValueError, match=f'f: n must be a positive int, got n={bad!r}'): check_count('f', 'n', bad)

@pytest.mark.slow
@pytest.mark.parametrize('first', ['miniai.learner', 'miniai.progress', 'miniai.checks'])
def test_progress_and_checks_by_plain_imports(first):
    "Lesson 08 imports its appendices 08b and 08d with plain lines; they import nothing from it: the course's imports work"
    r = _python(f'''
        import sys
        import {first}
        print('learner' if 'miniai.learner' in sys.modules else 'no learner')
        import miniai.learner as ml, miniai.progress as mp, miniai.checks as mc
        from miniai.learner import ProgressCB, save_loss_plot
        ns = {{}}
        exec('from miniai.learner import *', ns)
        print(ProgressCB is mp.ProgressCB, save_loss_plot is mp.save_loss_plot, ns['ProgressCB'] is mp.ProgressCB,
              ProgressCB.order > ml.MetricsCB.order, ml.check_fit is mc.check_fit)
        ''')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ['learner' if first == 'miniai.learner' else 'no learner', 'True True True True True'], r.stdout
    src = (ROOT/'miniai'/'learner.py').read_text()
    assert 'from .progress import ProgressCB, save_loss_plot' in src and 'from .checks import check_fit' in src
