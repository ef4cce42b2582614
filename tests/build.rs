// Same rpath to libtorch as the trainer's binary, for the test binaries.
include!("../host-trainer/build.rs");
