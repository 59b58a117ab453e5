//! The instance lifecycle as an explicit state machine, with Nova's words.
//!
//! An operation first *begins* (checked against the current state, sets a
//! `task_state`), then either *finishes* (the target vm/power state) or *fails*
//! (back to a stable state, or `error`). Reconciling with the processes actually
//! running is one more input ([`State::observe`]). Pure: no clock, no I/O; the
//! driver performs the side effects between `begin` and `finish`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Nova's `vm_state`: the stable state the instance is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    Building,
    Active,
    Stopped,
    Paused,
    Suspended,
    Error,
    Deleted,
}

/// Nova's `task_state`: the operation in progress, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Spawning,
    PoweringOff,
    PoweringOn,
    Rebooting,
    RebootingHard,
    Pausing,
    Unpausing,
    Suspending,
    Resuming,
    Rebuilding,
    Deleting,
    ImageSnapshot,
}

/// Nova's `power_state`: what the hypervisor says (numeric codes as Nova's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    NoState,
    Running,
    Paused,
    Shutdown,
    Crashed,
    Suspended,
}

/// An operator's request on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Stop,
    Start,
    Reboot { hard: bool },
    Pause,
    Unpause,
    Suspend,
    Resume,
    Rebuild,
    Snapshot,
    Delete,
}

/// The three states Nova keeps, together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct State {
    pub vm: VmState,
    pub task: Option<TaskState>,
    pub power: PowerState,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("cannot {action} instance while it is {status} (vm_state {vm}, task_state {task})")]
    Conflict {
        action: &'static str,
        status: &'static str,
        vm: &'static str,
        task: &'static str,
    },
}

macro_rules! names {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(VmState {
    Building => "building", Active => "active", Stopped => "stopped", Paused => "paused",
    Suspended => "suspended", Error => "error", Deleted => "deleted",
});
names!(TaskState {
    Spawning => "spawning", PoweringOff => "powering-off", PoweringOn => "powering-on",
    Rebooting => "rebooting", RebootingHard => "rebooting_hard", Pausing => "pausing",
    Unpausing => "unpausing", Suspending => "suspending", Resuming => "resuming",
    Rebuilding => "rebuilding", Deleting => "deleting", ImageSnapshot => "image_snapshot",
});
names!(PowerState {
    NoState => "nostate", Running => "running", Paused => "paused", Shutdown => "shutdown",
    Crashed => "crashed", Suspended => "suspended",
});

impl PowerState {
    /// Nova's numeric code (`OS-EXT-STS:power_state`).
    pub fn code(self) -> u8 {
        match self {
            PowerState::NoState => 0,
            PowerState::Running => 1,
            PowerState::Paused => 3,
            PowerState::Shutdown => 4,
            PowerState::Crashed => 6,
            PowerState::Suspended => 7,
        }
    }
}

impl Action {
    pub fn verb(self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Start => "start",
            Action::Reboot { hard: false } => "reboot",
            Action::Reboot { hard: true } => "hard-reboot",
            Action::Pause => "pause",
            Action::Unpause => "unpause",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::Rebuild => "rebuild",
            Action::Snapshot => "snapshot",
            Action::Delete => "delete",
        }
    }

    /// The task state while this action runs.
    pub fn task(self) -> TaskState {
        match self {
            Action::Stop => TaskState::PoweringOff,
            Action::Start => TaskState::PoweringOn,
            Action::Reboot { hard: false } => TaskState::Rebooting,
            Action::Reboot { hard: true } => TaskState::RebootingHard,
            Action::Pause => TaskState::Pausing,
            Action::Unpause => TaskState::Unpausing,
            Action::Suspend => TaskState::Suspending,
            Action::Resume => TaskState::Resuming,
            Action::Rebuild => TaskState::Rebuilding,
            Action::Snapshot => TaskState::ImageSnapshot,
            Action::Delete => TaskState::Deleting,
        }
    }

    /// The vm states this action may start from (Nova's `check_instance_state`).
    fn allowed_from(self) -> &'static [VmState] {
        use VmState::*;
        match self {
            Action::Stop => &[Active, Paused, Suspended, Error],
            Action::Start => &[Stopped],
            Action::Reboot { hard: false } => &[Active],
            Action::Reboot { hard: true } => &[Active, Stopped, Paused, Suspended, Error],
            Action::Pause => &[Active],
            Action::Unpause => &[Paused],
            Action::Suspend => &[Active],
            Action::Resume => &[Suspended],
            Action::Rebuild => &[Active, Stopped, Error],
            Action::Snapshot => &[Active, Stopped, Paused, Suspended],
            Action::Delete => &[Building, Active, Stopped, Paused, Suspended, Error],
        }
    }
}

/// The stable state a vm state implies for the hypervisor.
fn power_of(vm: VmState) -> PowerState {
    match vm {
        VmState::Active => PowerState::Running,
        VmState::Paused => PowerState::Paused,
        VmState::Building => PowerState::NoState,
        VmState::Stopped | VmState::Suspended | VmState::Error | VmState::Deleted => {
            PowerState::Shutdown
        }
    }
}

impl State {
    /// A new instance: building, spawning, nothing running yet.
    pub const fn building() -> Self {
        State {
            vm: VmState::Building,
            task: Some(TaskState::Spawning),
            power: PowerState::NoState,
        }
    }

    /// Nova's API `status` word for this state.
    pub fn status(&self) -> &'static str {
        match (self.vm, self.task) {
            (VmState::Active, Some(TaskState::Rebooting)) => "REBOOT",
            (VmState::Active, Some(TaskState::RebootingHard)) => "HARD_REBOOT",
            (_, Some(TaskState::Rebuilding)) => "REBUILD",
            (VmState::Building, _) => "BUILD",
            (VmState::Active, _) => "ACTIVE",
            (VmState::Stopped, _) => "SHUTOFF",
            (VmState::Paused, _) => "PAUSED",
            (VmState::Suspended, _) => "SUSPENDED",
            (VmState::Error, _) => "ERROR",
            (VmState::Deleted, _) => "DELETED",
        }
    }

    /// Every (`vm_state`, `task_state`) pair whose [`State::status`] is `status`
    /// (Nova's word, any case): what a `status` filter means as stored states.
    pub fn with_status(status: &str) -> Vec<(VmState, Option<TaskState>)> {
        let tasks = std::iter::once(None).chain(TaskState::ALL.iter().copied().map(Some));
        let tasks: Vec<Option<TaskState>> = tasks.collect();
        VmState::ALL
            .iter()
            .flat_map(|vm| tasks.iter().map(move |task| (*vm, *task)))
            .filter(|(vm, task)| {
                State {
                    vm: *vm,
                    task: *task,
                    power: PowerState::NoState,
                }
                .status()
                .eq_ignore_ascii_case(status)
            })
            .collect()
    }

    /// Checks that `action` may start now and returns the state while it runs.
    pub fn begin(self, action: Action) -> Result<State, LifecycleError> {
        let busy = self.task.is_some()
            && !(action == Action::Delete && self.task != Some(TaskState::Deleting));
        if busy || !action.allowed_from().contains(&self.vm) {
            return Err(LifecycleError::Conflict {
                action: action.verb(),
                status: self.status(),
                vm: self.vm.as_str(),
                task: self.task.map_or("none", TaskState::as_str),
            });
        }
        Ok(State {
            task: Some(action.task()),
            ..self
        })
    }

    /// Checks that the admin password may change now (Nova's `changePassword`:
    /// an active instance with no task); it changes no state.
    pub fn check_password_change(self) -> Result<(), LifecycleError> {
        if self.vm == VmState::Active && self.task.is_none() {
            return Ok(());
        }
        Err(LifecycleError::Conflict {
            action: "change password",
            status: self.status(),
            vm: self.vm.as_str(),
            task: self.task.map_or("none", TaskState::as_str),
        })
    }

    /// The state once `action` has succeeded.
    pub fn finish(self, action: Action) -> State {
        let vm = match action {
            Action::Stop => VmState::Stopped,
            Action::Start
            | Action::Reboot { .. }
            | Action::Unpause
            | Action::Resume
            | Action::Rebuild => VmState::Active,
            Action::Pause => VmState::Paused,
            Action::Suspend => VmState::Suspended,
            Action::Snapshot => self.vm,
            Action::Delete => VmState::Deleted,
        };
        State {
            vm,
            task: None,
            power: power_of(vm),
        }
    }

    /// The state once `action` has failed: `error`, except where nothing changed.
    pub fn fail(self, action: Action) -> State {
        match action {
            Action::Snapshot => State { task: None, ..self },
            _ => State {
                vm: VmState::Error,
                task: None,
                power: PowerState::Shutdown,
            },
        }
    }

    /// The end of a boot: active and running.
    pub fn spawned(self) -> State {
        State {
            vm: VmState::Active,
            task: None,
            power: PowerState::Running,
        }
    }

    /// Reconciles with what the hypervisor reports. `observed` is `None` when no
    /// process exists. `orphaned` is true when no command holds the instance's
    /// lock, so a task left set was interrupted (its `compute` died).
    pub fn observe(self, observed: Option<PowerState>, orphaned: bool) -> State {
        let mut s = self;
        if orphaned && s.task.is_some() {
            s.task = None;
            if s.vm == VmState::Building {
                return State {
                    vm: VmState::Error,
                    task: None,
                    power: observed.unwrap_or(PowerState::Shutdown),
                };
            }
        }
        if s.task.is_some() {
            return s;
        }
        match (s.vm, observed) {
            (VmState::Deleted, _) => s,
            (VmState::Error, Some(p)) => State { power: p, ..s },
            (_, Some(PowerState::Running)) => State {
                vm: VmState::Active,
                task: None,
                power: PowerState::Running,
            },
            (_, Some(PowerState::Paused)) => State {
                vm: VmState::Paused,
                task: None,
                power: PowerState::Paused,
            },
            (_, _) => {
                let vm = match s.vm {
                    VmState::Active | VmState::Paused => VmState::Stopped,
                    other => other,
                };
                State {
                    vm,
                    task: None,
                    power: PowerState::Shutdown,
                }
            }
        }
    }

    /// The invariant every stable state keeps: power follows vm state.
    pub fn is_consistent(&self) -> bool {
        match self.task {
            Some(_) => true,
            None => match self.vm {
                VmState::Building => false,
                VmState::Active => matches!(self.power, PowerState::Running),
                VmState::Paused => matches!(self.power, PowerState::Paused),
                VmState::Stopped | VmState::Suspended | VmState::Deleted => {
                    self.power == PowerState::Shutdown
                }
                VmState::Error => true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            Just(Action::Stop),
            Just(Action::Start),
            Just(Action::Reboot { hard: false }),
            Just(Action::Reboot { hard: true }),
            Just(Action::Pause),
            Just(Action::Unpause),
            Just(Action::Suspend),
            Just(Action::Resume),
            Just(Action::Rebuild),
            Just(Action::Snapshot),
            Just(Action::Delete),
        ]
    }

    #[derive(Debug, Clone, Copy)]
    enum Outcome {
        Finish,
        Fail,
        Interrupted,
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![4 => Just(Outcome::Finish), 1 => Just(Outcome::Fail), 1 => Just(Outcome::Interrupted)]
    }

    fn observed() -> impl Strategy<Value = Option<PowerState>> {
        prop_oneof![
            Just(None),
            Just(Some(PowerState::Running)),
            Just(Some(PowerState::Paused))
        ]
    }

    proptest! {
        #[test]
        fn no_sequence_leaves_an_impossible_state(
            steps in proptest::collection::vec((action(), outcome(), observed()), 0..40),
            boot_ok in any::<bool>(),
        ) {
            let mut s = State::building();
            s = if boot_ok { s.spawned() } else { s.fail(Action::Rebuild) };
            prop_assert!(s.is_consistent());
            for (a, o, seen) in steps {
                let before = s;
                match s.begin(a) {
                    Err(_) => prop_assert_eq!(s, before),
                    Ok(running) => {
                        prop_assert!(running.task.is_some());
                        s = match o {
                            Outcome::Finish => running.finish(a),
                            Outcome::Fail => running.fail(a),
                            Outcome::Interrupted => running.observe(seen, true),
                        };
                    }
                }
                prop_assert!(s.is_consistent(), "{:?} after {:?}", s, a);
                prop_assert!(s.task.is_none());
                if s.vm == VmState::Deleted {
                    prop_assert!(s.begin(Action::Start).is_err());
                    break;
                }
                s = s.observe(seen.filter(|_| matches!(s.vm, VmState::Active | VmState::Paused)), false);
                prop_assert!(s.is_consistent(), "{:?} after observing", s);
            }
        }
    }

    #[test]
    fn a_status_is_the_states_that_show_it() {
        let active = State::with_status("active");
        assert!(active.contains(&(VmState::Active, None)));
        assert!(active.contains(&(VmState::Active, Some(TaskState::PoweringOff))));
        assert!(!active.contains(&(VmState::Active, Some(TaskState::Rebooting))));
        assert_eq!(
            State::with_status("HARD_REBOOT"),
            [(VmState::Active, Some(TaskState::RebootingHard))]
        );
        assert!(State::with_status("REBUILD")
            .iter()
            .all(|(_, t)| *t == Some(TaskState::Rebuilding)));
        assert!(State::with_status("nonsense").is_empty());
    }

    #[test]
    fn statuses_are_novas_words() {
        let s = State::building();
        assert_eq!(s.status(), "BUILD");
        let a = s.spawned();
        assert_eq!(a.status(), "ACTIVE");
        assert_eq!(
            a.begin(Action::Reboot { hard: true }).map(|s| s.status()),
            Ok("HARD_REBOOT")
        );
        assert_eq!(
            a.begin(Action::Pause)
                .map(|s| s.finish(Action::Pause).status()),
            Ok("PAUSED")
        );
        assert_eq!(
            a.begin(Action::Stop)
                .map(|s| s.finish(Action::Stop).status()),
            Ok("SHUTOFF")
        );
        assert_eq!(a.fail(Action::Start).status(), "ERROR");
    }

    #[test]
    fn conflicts_are_refused_with_the_state_named() {
        let stopped = State::building()
            .spawned()
            .begin(Action::Stop)
            .map(|s| s.finish(Action::Stop));
        let err = stopped
            .and_then(|s| s.begin(Action::Pause))
            .expect_err("pause of a stopped instance");
        assert_eq!(
            err.to_string(),
            "cannot pause instance while it is SHUTOFF (vm_state stopped, task_state none)"
        );
    }

    #[test]
    fn a_crashed_qemu_shows_as_shutdown() {
        let s = State::building().spawned().observe(None, false);
        assert_eq!((s.vm, s.power), (VmState::Stopped, PowerState::Shutdown));
        let b = State::building().observe(None, true);
        assert_eq!(b.vm, VmState::Error);
    }
}
