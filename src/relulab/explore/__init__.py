"""relulab explore: the browser explorer. Curves of every member, a Playground where units die and revive.

``relulab explore`` serves a page from this package on 127.0.0.1 (standard library only: ``http.server`` and a
page that draws on its own canvases), so it runs offline from a fresh install. Every number the page draws comes
from relulab: the curves from ``relulab.family``, training from ``relulab.lab`` and ``relulab.nn``, unit states
from ``relulab.Monitor``, the remedies from ``relulab.revive`` and ``relulab.nn.swap``. In Python::

    from relulab.explore import make_server
    server = make_server(port=0)          # any free port
    print(server.url)
    server.serve_forever()                # Ctrl-C, then server.close()

Importing this package loads NumPy only; the Playground imports torch when its first session starts.
"""

from .errors import FieldError
from .server import DEFAULT_PORT, ExploreServer, make_server, serve

__all__ = ["FieldError", "ExploreServer", "make_server", "serve", "DEFAULT_PORT"]
