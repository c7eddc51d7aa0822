"""Sphinx configuration for mnistlab's documentation (`make docs`).

The API reference is generated: docs/api/index.rst names the packages once, and autosummary
walks each of them recursively (every module gets a page with its members), so a module that
is added, moved or renamed inside a package needs no change here. The pages are written to
docs/api/generated/ (not committed).

Each object is documented once, on the page of the module that defines it; a package's page
lists the names it re-exports (its ``__all__``) with links to those definitions.
"""

from __future__ import annotations

import importlib
import re

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

import mnistlab

project = "mnistlab"
author = "mnistlab developers"
release = mnistlab.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "myst_parser",  # docs/ARCHITECTURE.md and docs/performance.md are Markdown
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# Every warning fails the build (`sphinx-build -W`); references that cannot be resolved (a type
# hint naming numpy.ndarray, say) are not warnings unless nitpicky is on, and it is off.
nitpicky = False

autosummary_generate = True
autosummary_generate_overwrite = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Default values as the source writes them (learning_rate=1e-3, not 0.001).
autodoc_preserve_defaults = True

# The docstrings are NumPy style (Parameters / Returns sections) or plain prose.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
# A parameter's type is shown as written ("ndarray of shape (n_samples, n_classes)"), not as
# :type: fields, whose every word Sphinx would try to link (n_classes names two properties).
napoleon_use_param = False
napoleon_use_rtype = False

myst_heading_anchors = 3

# Docstrings quote command-line flags (--model): keep "--" as typed, not an en dash.
smartquotes = False

html_theme = "alabaster"
html_title = f"mnistlab {release}"
html_static_path: list[str] = []


class ReexportsDirective(SphinxDirective):
    """``.. mnistlab-reexports:: mnistlab.models``: a table of the names a package re-exports.

    The table links each name of the module's ``__all__`` that is defined in another mnistlab
    module to the page where it is documented, so that ``mnistlab.models.MLPClassifier`` is
    found from the package a user imports it from without being documented twice.
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module_name = self.arguments[0]
        module = importlib.import_module(module_name)
        targets = []
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            home = getattr(obj, "__module__", None)
            qualname = getattr(obj, "__qualname__", None)
            if home and qualname and home != module_name and home.startswith("mnistlab."):
                # autosummary resolves names relative to the page's module
                relative = home.removeprefix(f"{module_name}.")
                targets.append(f"~{relative}.{qualname}")
        if not targets:
            return []
        lines = [
            ".. rubric:: Imported from its modules",
            "",
            f"``from {module_name} import ...``; each is documented in its own module.",
            "",
            ".. autosummary::",
            "",
            *(f"   {target}" for target in targets),
        ]
        container = nodes.container()
        content = StringList(lines, source=module_name)
        self.state.nested_parse(content, self.content_offset, container)
        return container.children


#: Members that the estimators inherit from scikit-learn's BaseEstimator machinery (metadata
#: routing: ``set_fit_request`` and the like, made per class): scikit-learn documents them, and
#: their docstrings link into scikit-learn's own glossary.
SKLEARN_REQUEST_METHOD = re.compile(r"set_\w+_request")


def skip_sklearn_request_methods(app, what, name, obj, skip, options):
    """autodoc-skip-member: leave out scikit-learn's metadata-routing setters."""
    if SKLEARN_REQUEST_METHOD.fullmatch(name) and "sklearn" in getattr(obj, "__module__", ""):
        return True
    return None


#: the ``:type:`` line napoleon writes under each entry of an Attributes section
ATTRIBUTE_TYPE = re.compile(r"^(\s+):type: (.*)$")


def plain_attribute_types(app, what, name, obj, options, lines: list[str]) -> None:
    """autodoc-process-docstring, after napoleon: an attribute's type as plain text.

    Sphinx reads a ``:type:`` field word by word as links, so "ndarray of shape (n_classes,)"
    would link n_classes to whichever of the properties of that name it finds first (two
    exist, and the build warns). A type written for people is shown as written instead.
    """
    for index, line in enumerate(lines):
        match = ATTRIBUTE_TYPE.match(line)
        if match:
            lines[index] = f"{match.group(1)}:Type: {match.group(2)}"


def setup(app):
    app.add_directive("mnistlab-reexports", ReexportsDirective)
    # connected after napoleon (an extension, set up before this file's setup): sees its output
    app.connect("autodoc-process-docstring", plain_attribute_types)
    app.connect("autodoc-skip-member", skip_sklearn_request_methods)
    return {"parallel_read_safe": True}
