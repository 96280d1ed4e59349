//! A small assembler for classic BPF, the language of seccomp filters:
//! instructions with forward jumps to labels, resolved into the kernel's
//! `sock_filter` array (jump offsets are relative and at most 255 forward).

use libc::sock_filter;

/// A place in the program to jump to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// The instruction right after a jump: the offset 0.
pub const NEXT: Label = Label(usize::MAX);

enum Item {
    Statement {
        code: u16,
        k: u32,
    },
    Jump {
        code: u16,
        k: u32,
        yes: Label,
        no: Label,
    },
    Mark(Label),
}

#[derive(Default)]
pub struct Assembler {
    items: Vec<Item>,
    labels: usize,
}

impl Assembler {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `label` at the next instruction.
    pub fn mark(&mut self, label: Label) {
        self.items.push(Item::Mark(label));
    }

    pub fn statement(&mut self, code: u32, k: u32) {
        self.items.push(Item::Statement {
            code: code as u16,
            k,
        });
    }

    pub fn jump(&mut self, code: u32, k: u32, yes: Label, no: Label) {
        self.items.push(Item::Jump {
            code: code as u16,
            k,
            yes,
            no,
        });
    }

    /// Loads the 32-bit word at `offset` of `seccomp_data`.
    pub fn load(&mut self, offset: u32) {
        self.statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    }

    pub fn ret(&mut self, value: u32) {
        self.statement(libc::BPF_RET | libc::BPF_K, value);
    }

    /// Jumps to `target` if the accumulator equals `k`.
    pub fn jump_if_equal(&mut self, k: u32, target: Label) {
        self.jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, k, target, NEXT);
    }

    /// Jumps to `target` if the accumulator has any bit of `mask` set.
    pub fn jump_if_any_bit(&mut self, mask: u32, target: Label) {
        self.jump(
            libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
            mask,
            target,
            NEXT,
        );
    }

    /// Jumps to `target` if the accumulator is at least `k` (unsigned).
    pub fn jump_if_at_least(&mut self, k: u32, target: Label) {
        self.jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, k, target, NEXT);
    }

    /// The program, with every label resolved. Fails on a backward jump,
    /// a jump too far, or a label never placed: all bugs in the caller.
    pub fn finish(self) -> Result<Vec<sock_filter>, String> {
        let mut positions = vec![None; self.labels];
        let mut position = 0;
        for item in &self.items {
            match item {
                Item::Mark(Label(label)) => positions[*label] = Some(position),
                _ => position += 1,
            }
        }
        let mut program = Vec::with_capacity(position);
        for item in &self.items {
            let here = program.len();
            let offset = |label: Label| -> Result<u8, String> {
                if label == NEXT {
                    return Ok(0);
                }
                let target = positions[label.0].ok_or("a BPF label is never placed")?;
                target
                    .checked_sub(here + 1)
                    .and_then(|offset| u8::try_from(offset).ok())
                    .ok_or_else(|| format!("BPF jump from {here} to {target} out of range"))
            };
            match *item {
                Item::Mark(_) => {}
                Item::Statement { code, k } => program.push(sock_filter {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                }),
                Item::Jump { code, k, yes, no } => program.push(sock_filter {
                    code,
                    jt: offset(yes)?,
                    jf: offset(no)?,
                    k,
                }),
            }
        }
        Ok(program)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_are_resolved_relative_to_the_next_instruction() {
        let mut asm = Assembler::default();
        let end = asm.label();
        asm.load(0);
        asm.jump_if_equal(7, end);
        asm.ret(1);
        asm.mark(end);
        asm.ret(2);
        let program = asm.finish().unwrap();
        assert_eq!(program.len(), 4);
        assert_eq!((program[1].jt, program[1].jf), (1, 0));
    }

    #[test]
    fn a_backward_jump_is_refused() {
        let mut asm = Assembler::default();
        let start = asm.label();
        asm.mark(start);
        asm.load(0);
        asm.jump_if_equal(1, start);
        assert!(asm.finish().is_err());
    }
}
