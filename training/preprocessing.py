"""The one source of truth for preprocessing.

Every stage (training transforms, evaluation, the exporter's model contract and, through
that contract, the demo apps) reads these constants from here and nowhere else.
"""

# ImageNet statistics: torchvision's backbones (and their pretrained weights) expect them.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# Label value that is excluded from the loss and from every metric.
IGNORE_INDEX = 255
