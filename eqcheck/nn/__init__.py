"""Reference group-equivariant layers: p4/p4m convolutions, group pooling and norm, Deep Sets."""
from eqcheck.nn.filters import expand_filter_bank, filter_index_table, spatial_transform, transform_filter
from eqcheck.nn.gconv import P4ConvP4, P4ConvZ2, P4MConvP4M, P4MConvZ2, PlaneGroupConv
from eqcheck.nn.norm import GroupBatchNorm
from eqcheck.nn.pooling import GroupPool, GroupSpatialMaxPool, SpatialPool
from eqcheck.nn.sets import DeepSetsLayer, SetPool

__all__ = [
    "DeepSetsLayer",
    "GroupBatchNorm",
    "GroupPool",
    "GroupSpatialMaxPool",
    "P4ConvP4",
    "P4ConvZ2",
    "P4MConvP4M",
    "P4MConvZ2",
    "PlaneGroupConv",
    "SetPool",
    "SpatialPool",
    "expand_filter_bank",
    "filter_index_table",
    "spatial_transform",
    "transform_filter",
]
