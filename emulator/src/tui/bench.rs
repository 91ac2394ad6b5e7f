//! `durable-emu bench ui`: how long one frame takes to draw with 10,000 instances and a
//! 100,000-event history selected (issue 7, Performance). Filled in with the bench step.
