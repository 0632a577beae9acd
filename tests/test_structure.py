"""How the package holds together: importing never fails on a bad setting; shared helpers behave as their users need;
the import graph runs one way, from later lessons to earlier ones, with no circle and no hidden import.

The device test runs in a fresh Python process, because `def_device` is read once, at import.
"""
import ast, json, os, re, subprocess, sys, textwrap
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

# ---------------------------------------------------------------------------------------------
# The import graph, read from the `import` lines of the package (DESIGN.md: plain imports, one way, no circle).
# Lessons are ordered by number, then letter: 08 < 08a < 08b < 08c < 08d < 09. A module imports modules of earlier
# lessons; a lesson's own module (08) may also import its appendices (08b, 08d) when they import nothing from it.


def _exporters():
    "{module name: notebook stem}, from each notebook's `#| default_exp`"
    res = {}
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        for c in json.loads(nb.read_text())['cells']:
            m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M)
            if c['cell_type'] == 'code' and m: res[m.group(1)] = nb.stem
    return res

def _key(stem):
    "(number, letter) of a notebook stem: '08b_checks' -> (8, 'b'), '08_learner' -> (8, '')"
    m = re.match(r'(\d+)([a-z]?)_', stem)
    return int(m.group(1)), m.group(2)

def _imports(src):
    "The miniai modules that the code `src` imports, at any depth (a lazy import inside a function counts too)"
    found = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module: found.add(node.module.split('.')[0])
            elif node.level == 1: found.update(a.name for a in node.names)
            elif (node.module or '').startswith('miniai.'): found.add(node.module.split('.')[1])
            elif node.module == 'miniai': found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split('.')[1] for a in node.names if a.name.startswith('miniai.'))
    return found

def _graph():
    "{module: the miniai modules it imports}, for every module a notebook exports"
    return {mod: _imports((ROOT/'miniai'/f'{mod}.py').read_text()) for mod in _exporters()}

def _layering_errors(graph, exporters):
    "Each import that points to a later lesson, and is not a lesson's own appendix that imports nothing back"
    bad = []
    def reaches(a, b, seen=()):
        return b in graph.get(a, ()) or any(reaches(c, b, seen + (a,)) for c in graph.get(a, ()) if c not in seen)
    for mod, deps in sorted(graph.items()):
        (n, letter) = _key(exporters[mod])
        for dep in sorted(deps):
            if dep not in exporters: bad.append(f'{mod} imports miniai.{dep}, which no notebook exports'); continue
            (dn, dletter) = _key(exporters[dep])
            if (dn, dletter) < (n, letter): continue
            if dn == n and not letter and dletter and not reaches(dep, mod): continue  # the lesson's own appendix
            bad.append(f'miniai.{mod} ({exporters[mod]}) imports miniai.{dep} ({exporters[dep]})')
    return bad

def _cycles(graph):
    "Every module that can reach itself through imports"
    def reaches(a, b, seen):
        return any(c == b or (c not in seen and reaches(c, b, seen | {c})) for c in graph.get(a, ()))
    return sorted(m for m in graph if reaches(m, m, {m}))

def test_lessons_order_by_number_then_letter():
    stems = ['09_activations', '08d_progress', '08_learner', '08b_checks', '08a_cli', '08c_main', '07_autoencoder']
    assert sorted(stems, key=_key) == ['07_autoencoder', '08_learner', '08a_cli', '08b_checks', '08c_main', '08d_progress',
                                       '09_activations']

def test_imports_point_back_and_no_circle():
    exporters, graph = _exporters(), _graph()
    assert {'learner', 'checks', 'progress', 'cli', '__main__'} <= set(graph), sorted(graph)
    assert not _layering_errors(graph, exporters), '\n'.join(_layering_errors(graph, exporters))
    assert _cycles(graph) == []

def test_layering_rules_catch_what_they_should():
    "The rules on a made-up graph: a lesson may use its own appendix, but not when it imports back, nor a later lesson"
    ex = {'learner': '08_learner', 'cli': '08a_cli', 'checks': '08b_checks', 'progress': '08d_progress', 'conv': '06_conv',
          'init': '10_init'}
    ok = {'learner': {'checks', 'progress', 'conv'}, 'checks': {'conv'}, 'progress': set(), 'cli': {'learner'}, 'conv': set()}
    assert _layering_errors(ok, ex) == [] and _cycles(ok) == []
    circle = {**ok, 'checks': {'conv', 'learner'}}
    assert _layering_errors(circle, ex) == ['miniai.learner (08_learner) imports miniai.checks (08b_checks)']
    assert _cycles(circle) == ['checks', 'learner']
    sideways = {**ok, 'cli': {'learner', 'progress'}, 'conv': {'init'}}  # an appendix using a later appendix; a later lesson
    assert _layering_errors(sideways, ex) == ['miniai.cli (08a_cli) imports miniai.progress (08d_progress)',
                                              'miniai.conv (06_conv) imports miniai.init (10_init)']
    assert _imports('def fit(self):\n    from miniai.checks import check_fit\nfrom .conv import x\nimport miniai.data') == \
        {'checks', 'conv', 'data'}

def test_no_hidden_imports():
    "No module-level __getattr__ and no importlib in the package: every import is a line a reader and a tool can follow"
    for path in sorted((ROOT/'miniai').glob('*.py')):
        tree = ast.parse(path.read_text())
        top = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert '__getattr__' not in top, f'{path.name} defines a module __getattr__'
        assert not (_imports_names(tree) & {'importlib', '__import__'}), f'{path.name} imports by name at run time'

def _imports_names(tree):
    "Top-level module names imported anywhere in `tree`, and calls of __import__"
    names = {a.name.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split('.')[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    names |= {'__import__' for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, 'id', None) == '__import__'}
    return names
