//! Value conversions between vector representations (being written).
