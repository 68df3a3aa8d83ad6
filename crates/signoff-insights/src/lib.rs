//! What Signoff learns from its history: approval statistics (volume, approval and edit rates, time to decide, load
//! per approver, flags and misses) and the advice drawn from them (which gates to relax or tighten, calibrated
//! confidence thresholds), computed from stored requests without any I/O.
#![forbid(unsafe_code)]

pub mod advice;
pub mod calibration;
pub mod stats;
