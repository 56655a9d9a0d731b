//! The fixed steps of pid 1 and the payload, outside the mount plan: one
//! table gives each its code on the report socket (its place in the table)
//! and the words of its error message.

macro_rules! init_steps {
    ($($step:ident => $what:literal,)*) => {
        /// A fixed step of pid 1 or of the payload.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum InitStep {
            $($step,)*
        }

        /// Every step, in the order of their codes.
        pub(crate) const INIT_STEPS: &[InitStep] = &[$(InitStep::$step,)*];

        impl InitStep {
            /// Completes "cannot …" in the error message.
            pub fn what(self) -> &'static str {
                match self {
                    $(InitStep::$step => $what,)*
                }
            }
        }
    };
}

init_steps! {
    CloseInherited => "close the caller's descriptors in the stage",
    NewProcessGroup => "give the stage's pid 1 a process group of its own",
    DropBoundingSet => "empty the capability bounding set",
    ClearAmbient => "clear the ambient capabilities",
    NoNewPrivs => "set no_new_privs",
    ClearCapabilities => "drop every capability",
    NotDumpable => "make the stage's pid 1 non-dumpable",
    StartCommand => "start the command",
    CloseOwn => "close pid 1's descriptors",
    WatchSignals => "watch signals in pid 1",
    Wait => "wait for the command",
    PayloadSession => "give the command a session of its own",
    CopyStdio => "copy a descriptor for stdin, stdout or stderr",
    MoveStdio => "move a descriptor onto stdin, stdout or stderr",
    KeepStdio => "keep stdin, stdout or stderr open across exec",
    ControllingTerminal => "make the stage's terminal its controlling terminal",
    KeepFd => "pass a --fd descriptor",
    CloseOthers => "close every other descriptor at exec",
    SetRlimit => "set a --rlimit",
    PayloadDumpable => "make the command's process dumpable for --uid/--gid",
    EnterIdentity => "create the user namespace of --uid/--gid",
    MapIdentity => "map the user and group of --uid/--gid",
    SwitchIds => "take the user and group of --uid/--gid",
    Seccomp => "install the seccomp filter",
}

impl InitStep {
    /// The step's code on the report socket.
    pub(crate) fn code(self) -> i32 {
        self as i32
    }

    /// The step of a code, if any.
    pub(crate) fn from_code(code: i32) -> Option<InitStep> {
        INIT_STEPS.get(usize::try_from(code).ok()?).copied()
    }
}
