"""Adapters that give other libraries' APIs over saliencelab's computation.

- :mod:`saliencelab.compat.captum`: Captum's ``captum.attr`` class names and
  ``.attribute(...)`` signatures; ``import saliencelab.compat.captum as attr``
  in place of ``import captum.attr as attr``.

Example
-------
>>> import torch
>>> import saliencelab.compat.captum as attr
>>> model = torch.nn.Linear(3, 2)
>>> attr.InputXGradient(model).attribute(torch.ones(1, 3), target=0).shape
torch.Size([1, 3])
"""
