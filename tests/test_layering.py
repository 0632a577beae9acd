"""The import graph of miniai, read from its `import` lines: every arrow points back to an earlier lesson.

Each module belongs to the lesson whose notebook exports it (`#| default_exp NAME`, or `#| export NAME` for a
second module). Lessons are ordered by number, then letter: 08 < 08a < 08b < 08d < 09. Every notebook and every
module may import only from the modules of earlier lessons, or of its own, with one exception: a lesson (08, with no
letter) may import the modules of its own appendices (08b, 08d) when these import nothing that leads back to it.
That is how the armour of an appendix is on by default (DESIGN.md) without a circle: 08b's checks and 08d's progress
bars serve 08's Learner and know nothing of it. The graph has no circle. An import that tools and readers cannot
follow (an `importlib` call, a module-level `__getattr__` that loads another module) would hide an arrow from this
test, and is refused too.
"""
import json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))

# `from miniai.x import`, `from .x import`, `import miniai.x`, `from miniai import x`, `from . import x`, at any indent
_IMPORT = re.compile(r'^\s*(?:from\s+(?:miniai)?\.(\w+)\s+import|import\s+miniai\.(\w+)|from\s+(?:miniai|\.)\s+import\s+(\w+))', re.M)
_EXPORT = re.compile(r'^#\|[ \t]*(?:default_exp|export|exporti|exports)[ \t]+([\w.]+)[ \t]*$', re.M)
_HIDDEN = re.compile(r'^[^#\n]*\bimportlib\b.*$|^def __getattr__\(.*$', re.M)

def lesson(nb):
    "The order of a notebook: (number, letter), so that 08 < 08a < 08b < 09"
    m = re.match(r'(\d+)([a-z]?)_', nb.stem)
    return int(m.group(1)), m.group(2)

def _code(nb): return '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code')

def exporters(nbs=NBS):
    "{module: the notebook that exports it}"
    return {m: nb for nb in nbs for m in _EXPORT.findall(_code(nb))}

def imported(text):
    return sorted({next(g for g in m if g) for m in _IMPORT.findall(text)})

def reaches(graph, a, targets, seen=()):
    "Does module `a` import, directly or through others, any module in `targets`?"
    return any(b in targets or (b not in seen and reaches(graph, b, targets, seen + (a,))) for b in graph.get(a, ()))

def backward(users, exps, graph=None):
    "The imports, in `users` [(name, code, lesson)], of a module of a later lesson or of no lesson (own appendices aside)"
    graph = graph or {}
    bad = []
    for name, text, at in users:
        own = {m for m, nb in exps.items() if lesson(nb) == at}
        for mod in imported(text):
            src = exps.get(mod)
            if src is None: bad.append(f'{name} imports miniai.{mod}, which no notebook exports'); continue
            n, letter = lesson(src)
            if (n, letter) <= at: continue
            if n == at[0] and not at[1] and not reaches(graph, mod, own): continue  # the lesson's own appendix
            bad.append(f'{name} imports miniai.{mod}, from the later {src.name}')
    return bad

def graph_of(modules):
    "{module: the miniai modules it imports}, for the package's modules"
    return {p.stem: set(imported(p.read_text())) for p in modules}

def cycles(graph):
    "The modules that can reach themselves through imports"
    return sorted(m for m in graph if reaches(graph, m, {m}))

def hidden(name, text):
    return [f'{name}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0).strip()}' for m in _HIDDEN.finditer(text)]

def _modules(): return sorted(p for p in (ROOT/'miniai').glob('*.py') if p.stem not in ('__init__', '_modidx'))

def test_every_module_has_a_lesson():
    exps = exporters()
    assert not [p.name for p in _modules() if p.stem not in exps], 'modules that no notebook exports'

def test_imports_point_back_to_earlier_lessons():
    exps = exporters()
    users = [(nb.name, _code(nb), lesson(nb)) for nb in NBS]
    users += [(f'miniai/{p.name}', p.read_text(), lesson(exps[p.stem])) for p in _modules() if p.stem in exps]
    bad = backward(users, exps, graph_of(_modules()))
    assert not bad, '\n'.join(bad)

def test_no_circle():
    assert cycles(graph_of(_modules())) == []

def test_no_hidden_imports():
    bad = [h for p in _modules() for h in hidden(f'miniai/{p.name}', p.read_text())]
    assert not bad, 'imports that the import lines do not show:\n' + '\n'.join(bad)

def test_the_rules_find_what_they_should():
    "The checks above, on made-up code: each kind of arrow back is found, and the allowed ones are not"
    nb = lambda s: Path(f'{s}.ipynb')
    exps = {'learner': nb('08_learner'), 'checks': nb('08b_checks'), 'progress': nb('08d_progress'), 'sgd': nb('11_sgd')}
    graph = {'learner': {'checks', 'progress'}, 'checks': set(), 'progress': set(), 'sgd': {'learner'}}
    ok = [('08b_x', 'from miniai.learner import Learner', (8, 'b')), ('08d_x', 'from .checks import check_fit', (8, 'd')),
          ('11_x', 'import miniai.progress\nfrom miniai import learner', (11, '')), ('08_x', 'from .learner import Callback', (8, '')),
          ('08_y', 'from .checks import check_fit\nfrom .progress import ProgressCB', (8, ''))]  # a lesson uses its appendices
    assert backward(ok, exps, graph) == []
    circle = {**graph, 'checks': {'learner'}}  # an appendix that imports its lesson: the lesson may not import it
    bad = [('08_x', 'def fit(self):\n    from .checks import check_fit', (8, '')), ('08b_x', 'from miniai import progress', (8, 'b')),
           ('09_x', 'from miniai.sgd import SGD', (9, '')), ('03_x', 'import miniai.nothing', (3, ''))]
    assert backward(bad, exps, circle) == ['08_x imports miniai.checks, from the later 08b_checks.ipynb',
                                   '08b_x imports miniai.progress, from the later 08d_progress.ipynb',
                                   '09_x imports miniai.sgd, from the later 11_sgd.ipynb', '03_x imports miniai.nothing, which no notebook exports']
    assert cycles(circle) == ['checks', 'learner'] and cycles(graph) == []
    code = 'import importlib\nclass A:\n    def __getattr__(self, k): return k\ndef __getattr__(name):\n    return importlib.import_module(name)\n'
    assert hidden('m.py', code) == ['m.py:1: import importlib', 'm.py:4: def __getattr__(name):',
                                    'm.py:5: return importlib.import_module(name)']
    assert _EXPORT.findall('#| default_exp learner\n#| export\nx = 1\n#| export progress\n#|export\nimport a') == ['learner', 'progress']
