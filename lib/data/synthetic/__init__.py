"""A synthetic face dataset in exactly the PAIR layout, rendered from a 3D landmark template.

``python -m lib.data.synthetic --out data/synthetic --train N --test M --seed S``
"""
