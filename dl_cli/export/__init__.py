"""Export: a trained model with its fitted preprocessing as an ONNX graph.

```python
from dl_cli.export import to_onnx
proto = to_onnx(model, fitted_steps, class_names=names)   # an onnx.ModelProto, checked
```

Needs the optional ``onnx`` package (``pip install 'dl-cli[onnx]'``). Importing this
package registers an exporter for every built-in layer (``EXPORTERS``) and
preprocessing step (``PREPROCESS_EXPORTERS``); a layer of one's own exports once an
exporter is registered under its name (see ``exporters.py``).
"""

from . import blocks, layers, resample, sequences  # noqa: F401  (registration)
from .exporters import EXPORTERS
from .graph import ExportError
from .onnx_model import DEFAULT_OPSET, to_onnx
from .preprocess import PREPROCESS_EXPORTERS

__all__ = ["DEFAULT_OPSET", "EXPORTERS", "ExportError", "PREPROCESS_EXPORTERS", "to_onnx"]
