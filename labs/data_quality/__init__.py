"""Lab ``data_quality``: a data contract, a gate that loses nothing, and the upstream unit-change
incident replayed end to end. The contract itself lives in ``labs.common.schema``."""
