"""From a workflow or an image to the exact models it needs.

``containers`` finds the embedded texts (PNG text chunks, WebP/JPEG EXIF and XMP, plain
JSON); ``graph`` reads node graphs with the node types plugins describe (``nodes``);
``infotext`` reads generation parameters; ``resolve`` gives each model its status against
the store and the sources; ``install`` and ``use`` act on it. Importing this package is
cheap: the registry imports ``nodes`` when plugins load.
"""
