"""What a head is compared with: the baseline's runs, pinned baseline files, what changed in the gate's inputs,
history."""
