//! Why a stage cannot be planned: its arguments ask for mount points that
//! can never work (the caller reports these as usage errors).

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("{first} and {second} want the same mount point '{path}': one would hide the other")]
    MountPointTaken {
        path: String,
        first: String,
        second: String,
    },
    #[error("path '{0}' contains a NUL byte")]
    Nul(String),
    #[error("mount point '{0}' must be absolute, without '.' or '..'")]
    NotNormal(String),
    #[error("mount point '{0}' is inside the stage's own {1}")]
    Reserved(String, &'static str),
    #[error(
        "--out '{given}' goes through a symbolic link of the stage, and a slice is never \
         mounted through one: use its real path, --out '{real}'"
    )]
    OutputThroughLink { given: String, real: String },
    #[error("bind destination '{0}' goes through more than 40 symbolic links")]
    SymlinkLoop(String),
    #[error("{0} layers is more than the kernel stacks in one OverlayFS (500)")]
    TooManyLayers(usize),
}
