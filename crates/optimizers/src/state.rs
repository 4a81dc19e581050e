//! Per-parameter state buffers, shared by every rule.

/// Most slots a rule may keep per parameter (Adam with AMSGrad keeps three).
pub(crate) const MAX_SLOTS: usize = 4;

/// Named state buffers, one set per parameter, allocated at build time.
#[derive(Debug, Clone, Default)]
pub(crate) struct SlotTable {
    pub names: Vec<String>,
    /// `buffers[param][k]` is the `k`-th slot of parameter `param`.
    pub buffers: Vec<Vec<Vec<f32>>>,
    pub built: bool,
}

impl SlotTable {
    /// Zeroed buffers: `slot_count` per parameter, each as long as the parameter.
    pub fn build(params: &[(String, usize)], slot_count: usize) -> Self {
        assert!(slot_count <= MAX_SLOTS, "a rule keeps at most {MAX_SLOTS} slots per parameter");
        Self {
            names: params.iter().map(|(n, _)| n.clone()).collect(),
            // (Each buffer its own fresh allocation, not a copy of the first: see
            // `kiln_tensor::huge_pages::zeroed`.)
            buffers: params
                .iter()
                .map(|&(_, len)| (0..slot_count).map(|_| kiln_tensor::huge_pages::zeroed(len)).collect())
                .collect(),
            built: true,
        }
    }

    /// The slots of one parameter; panics with a clear message when not built.
    pub fn get_mut(&mut self, index: usize, len: usize) -> &mut [Vec<f32>] {
        let slots = self.buffers.get_mut(index).unwrap_or_else(|| panic!("optimizer not built for parameter {index}"));
        assert!(slots.iter().all(|s| s.len() == len), "parameter {index} changed length");
        slots
    }

    /// Views of every buffer under the given slot names.
    pub fn slots<'a>(&'a self, names: &[&'static str]) -> Vec<crate::Slot<'a>> {
        let mut out = Vec::new();
        for (param, bufs) in self.names.iter().zip(&self.buffers) {
            for (name, buf) in names.iter().zip(bufs) {
                out.push(crate::Slot { param, slot: name, values: buf });
            }
        }
        out
    }

    /// Overwrites one buffer by slot name.
    pub fn set(&mut self, names: &[&'static str], index: usize, slot: &str, values: &[f32]) -> bool {
        let Some(k) = names.iter().position(|n| *n == slot) else { return false };
        match self.buffers.get_mut(index).and_then(|b| b.get_mut(k)) {
            Some(buf) if buf.len() == values.len() => {
                buf.copy_from_slice(values);
                true
            }
            _ => false,
        }
    }
}
