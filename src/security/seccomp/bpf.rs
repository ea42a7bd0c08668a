//! Compiles a profile's [`Rules`] into one classic-BPF program for `seccomp(2)`.
//!
//! Shape, for start-up time: when a filter is loaded the kernel runs it for every syscall
//! number to learn which ones it always allows (the seccomp action cache), and at every
//! syscall afterwards. So the program is a binary search over *ranges* of syscall numbers
//! with the same verdict (an allowlist is mostly long runs of allowed numbers), whose
//! leaves return at once; only the few syscalls with argument conditions get a block of
//! comparisons at their leaf. Every piece is self-contained (jumps only forward, inside
//! it), so no labels are needed; a jump too long for the 8-bit offsets goes through `JA`.
//! When the whole program is short enough for every jump to reach its end, the plain
//! leaves are not instructions of their own: the comparison above a leaf jumps straight
//! to one shared `RET` per action at the end ([`search_shared`]). The default profile's
//! program is then a third shorter (188 -> 125 instructions), and the kernel checks,
//! converts and JITs every instruction of a filter at each container's start: loading it
//! takes ~10 us less (of ~0.1 ms).
//!
//! Arguments are 64 bits, compared as two 32-bit halves (little-endian layout of
//! `struct seccomp_data`: nr, arch, instruction pointer, then args[6] from offset 16).

use anyhow::{bail, Result};

use super::profile::{Cmp, Rule, Rules};

#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Syscall numbers at or above this are the x32 ABI on x86_64: treated as another
/// architecture (the process is killed, as libseccomp does), except -1, which tracers use
/// to skip a call.
#[cfg(target_arch = "x86_64")]
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
pub const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
pub const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
pub const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
pub const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
pub const AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
pub const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

const NR: u32 = 0;
const ARCH: u32 = 4;

/// Offset of argument `index`'s low half; the high half follows.
fn arg_low(index: u32) -> u32 {
    16 + 8 * index
}

type Code = Vec<libc::sock_filter>;

fn op(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// What a range of syscall numbers gets: a plain return, or the rules of one syscall.
#[derive(Clone, PartialEq)]
enum Leaf<'a> {
    Ret(u32),
    Rules(&'a [Rule]),
}

/// The whole filter for this architecture.
pub fn compile(rules: &Rules) -> Result<Code> {
    let mut code = vec![
        op(LD_W_ABS, ARCH),
        jump(JEQ_K, AUDIT_ARCH, 1, 0),
        op(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        op(LD_W_ABS, NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        code.push(jump(JGE_K, X32_SYSCALL_BIT, 0, 3));
        code.push(jump(JEQ_K, u32::MAX, 0, 1));
        code.push(op(RET_K, rules.default));
        code.push(op(RET_K, libc::SECCOMP_RET_KILL_PROCESS));
    }
    // Ranges [start, next start) with one verdict, from 0 up; the last runs to the end.
    let mut ranges: Vec<(u32, Leaf)> = vec![(0, Leaf::Ret(rules.default))];
    for (&nr, list) in &rules.syscalls {
        let leaf = match list.as_slice() {
            [only] if only.conds.is_empty() => Leaf::Ret(only.action),
            _ => Leaf::Rules(list),
        };
        match ranges.last_mut() {
            Some(last) if last.0 == nr => last.1 = leaf,
            _ => ranges.push((nr, leaf)),
        }
        ranges.push((nr + 1, Leaf::Ret(rules.default)));
    }
    ranges.dedup_by(|next, prev| next.1 == prev.1 && matches!(next.1, Leaf::Ret(_)));
    match search_shared(&ranges, rules.default)?.resolve() {
        Some(tree) => code.extend(tree),
        None => code.extend(search(&ranges, rules.default)?),
    }
    if code.len() > u16::MAX as usize {
        bail!("seccomp filter too long ({} instructions)", code.len());
    }
    Ok(code)
}

/// A search over `ranges` (sorted by start; the syscall number in the accumulator).
fn search(ranges: &[(u32, Leaf)], default: u32) -> Result<Code> {
    if let [(_, leaf)] = ranges {
        return match leaf {
            Leaf::Ret(action) => Ok(vec![op(RET_K, *action)]),
            Leaf::Rules(rules) => syscall_rules(rules, default),
        };
    }
    let (low, high) = ranges.split_at(ranges.len() / 2);
    let split = high[0].0;
    let (low, high) = (search(low, default)?, search(high, default)?);
    let mut code = Vec::with_capacity(low.len() + high.len() + 2);
    match u8::try_from(low.len()) {
        Ok(skip) => code.push(jump(JGE_K, split, skip, 0)),
        Err(_) => {
            code.push(jump(JGE_K, split, 0, 1));
            code.push(op(JA, u32::try_from(low.len())?));
        }
    }
    code.extend(low);
    code.extend(high);
    Ok(code)
}

/// A jump of the shared-return search: `n` instructions past the next one, or the shared
/// `RET` of an action.
#[derive(Clone, Copy)]
enum Dest {
    Skip(usize),
    Ret(u32),
}

/// An instruction of the shared-return search.
enum TreeInsn {
    Done(libc::sock_filter),
    /// `JGE k`: true to the upper half, false to the lower.
    Split {
        k: u32,
        jt: Dest,
        jf: Dest,
    },
}

/// A subtree of the shared-return search: code, or (no code at all) the action that
/// every number in it gets.
enum Sub {
    Ret(u32),
    Code(Vec<TreeInsn>),
}

/// Like [`search`], but a range that only returns is no instruction: the comparison
/// above it jumps to the action's shared `RET` ([`Sub::resolve`] places those).
fn search_shared(ranges: &[(u32, Leaf)], default: u32) -> Result<Sub> {
    if let [(_, leaf)] = ranges {
        return Ok(match leaf {
            Leaf::Ret(action) => Sub::Ret(*action),
            Leaf::Rules(rules) => Sub::Code(syscall_rules(rules, default)?.into_iter().map(TreeInsn::Done).collect()),
        });
    }
    let (low, high) = ranges.split_at(ranges.len() / 2);
    let split = high[0].0;
    let (low, high) = (search_shared(low, default)?, search_shared(high, default)?);
    // Laid out as: the comparison, the lower half's code, the upper half's code.
    let low_len = match &low {
        Sub::Code(c) => c.len(),
        Sub::Ret(_) => 0,
    };
    let jt = match &high {
        Sub::Ret(action) => Dest::Ret(*action),
        Sub::Code(_) => Dest::Skip(low_len),
    };
    let jf = match &low {
        Sub::Ret(action) => Dest::Ret(*action),
        Sub::Code(_) => Dest::Skip(0),
    };
    let mut code = vec![TreeInsn::Split { k: split, jt, jf }];
    for half in [low, high] {
        if let Sub::Code(c) = half {
            code.extend(c);
        }
    }
    Ok(Sub::Code(code))
}

impl Sub {
    /// The search followed by one `RET` per action it jumps to; None when some jump would
    /// not fit in 8 bits (then [`search`] lays the program out).
    fn resolve(self) -> Option<Code> {
        let tree = match self {
            Sub::Ret(action) => return Some(vec![op(RET_K, action)]),
            Sub::Code(tree) => tree,
        };
        let mut actions: Vec<u32> = Vec::new();
        for insn in &tree {
            if let TreeInsn::Split { jt, jf, .. } = insn {
                for dest in [jt, jf] {
                    if let Dest::Ret(a) = dest {
                        if !actions.contains(a) {
                            actions.push(*a);
                        }
                    }
                }
            }
        }
        let end = tree.len();
        let offset = |at: usize, dest: Dest| -> Option<u8> {
            match dest {
                Dest::Skip(n) => u8::try_from(n).ok(),
                Dest::Ret(a) => u8::try_from(end + actions.iter().position(|x| *x == a)? - at - 1).ok(),
            }
        };
        let mut code = Code::with_capacity(end + actions.len());
        for (at, insn) in tree.iter().enumerate() {
            code.push(match *insn {
                TreeInsn::Done(i) => i,
                TreeInsn::Split { k, jt, jf } => jump(JGE_K, k, offset(at, jt)?, offset(at, jf)?),
            });
        }
        code.extend(actions.iter().map(|a| op(RET_K, *a)));
        Some(code)
    }
}

/// One syscall's rules: each rule's conditions, on failure on to the next rule; the
/// first rule whose conditions all hold returns its action. The syscall number is no
/// longer needed (the accumulator gets reloaded with arguments).
fn syscall_rules(rules: &[Rule], default: u32) -> Result<Code> {
    let mut code = Code::new();
    for rule in rules {
        // Conditions, each jumping to `FAIL` (the end of this rule) when it does not hold.
        let mut body: Vec<Insn> = Vec::new();
        for &(index, cmp) in &rule.conds {
            condition(index, cmp, &mut body);
        }
        body.push(Insn::Op(op(RET_K, rule.action)));
        let end = body.len();
        for (at, insn) in body.iter().enumerate() {
            code.push(insn.resolve(at, end)?);
        }
        if rule.conds.is_empty() {
            return Ok(code);
        }
    }
    // No rule matched: the profile's default.
    code.push(op(RET_K, default));
    Ok(code)
}

/// An instruction whose jumps may go to the end of the condition (`Pass`, the next
/// condition) or of the rule (`Fail`).
#[derive(Clone, Copy)]
enum Insn {
    Op(libc::sock_filter),
    Jump { code: u16, k: u32, jt: To, jf: To },
}

#[derive(Clone, Copy)]
enum To {
    Next,
    /// `n` instructions past the next one.
    Skip(u8),
    /// The end of this rule: conditions failed.
    Fail,
}

impl Insn {
    fn resolve(self, at: usize, end: usize) -> Result<libc::sock_filter> {
        let (code, k, jt, jf) = match self {
            Insn::Op(i) => return Ok(i),
            Insn::Jump { code, k, jt, jf } => (code, k, jt, jf),
        };
        let off = |t: To| -> Result<u8> {
            match t {
                To::Next => Ok(0),
                To::Skip(n) => Ok(n),
                // The rule ends with its RET at end - 1; failing lands just past it.
                To::Fail => u8::try_from(end - at - 1).map_err(|_| anyhow::anyhow!("seccomp rule too long")),
            }
        };
        Ok(jump(code, k, off(jt)?, off(jf)?))
    }
}

fn cond_jump(code: u16, k: u32, jt: To, jf: To) -> Insn {
    Insn::Jump { code, k, jt, jf }
}

fn load(offset: u32) -> Insn {
    Insn::Op(op(LD_W_ABS, offset))
}

/// Appends the test of one 64-bit argument; falls through when it holds.
fn condition(index: u32, cmp: Cmp, out: &mut Vec<Insn>) {
    let (lo, hi) = (arg_low(index), arg_low(index) + 4);
    let halves = |v: u64| ((v >> 32) as u32, v as u32);
    match cmp {
        Cmp::Eq(v) => {
            let (vh, vl) = halves(v);
            out.extend([load(hi), cond_jump(JEQ_K, vh, To::Next, To::Fail)]);
            out.extend([load(lo), cond_jump(JEQ_K, vl, To::Next, To::Fail)]);
        }
        Cmp::Ne(v) => {
            // Holds when either half differs: a differing high half skips the low test.
            let (vh, vl) = halves(v);
            out.extend([load(hi), cond_jump(JEQ_K, vh, To::Next, To::Skip(2))]);
            out.extend([load(lo), cond_jump(JEQ_K, vl, To::Fail, To::Next)]);
        }
        Cmp::MaskedEq { mask, value } => {
            let (mh, ml) = halves(mask);
            let (vh, vl) = halves(value);
            if mh != 0 || vh != 0 {
                let and = Insn::Op(op(AND_K, mh));
                out.extend([load(hi), and, cond_jump(JEQ_K, vh, To::Next, To::Fail)]);
            }
            let and = Insn::Op(op(AND_K, ml));
            out.extend([load(lo), and, cond_jump(JEQ_K, vl, To::Next, To::Fail)]);
        }
        Cmp::Gt(v) | Cmp::Ge(v) => {
            // High half greater: holds; smaller: fails; equal: the low half decides.
            let (vh, vl) = halves(v);
            let low_op = if matches!(cmp, Cmp::Gt(_)) { JGT_K } else { JGE_K };
            out.extend([load(hi), cond_jump(JGT_K, vh, To::Skip(3), To::Next)]);
            out.extend([cond_jump(JEQ_K, vh, To::Next, To::Fail)]);
            out.extend([load(lo), cond_jump(low_op, vl, To::Next, To::Fail)]);
        }
        Cmp::Lt(v) | Cmp::Le(v) => {
            // High half greater: fails; smaller: holds; equal: the low half decides.
            let (vh, vl) = halves(v);
            let low_op = if matches!(cmp, Cmp::Lt(_)) { JGE_K } else { JGT_K };
            out.extend([load(hi), cond_jump(JGT_K, vh, To::Fail, To::Next)]);
            out.extend([cond_jump(JEQ_K, vh, To::Next, To::Skip(2))]);
            out.extend([load(lo), cond_jump(low_op, vl, To::Fail, To::Next)]);
        }
    }
}
