"""Imports: what `import` and `require` of a session reach (its worktree's files and its
template's packages), resolved as Node resolves them, never outside the tree they start in."""
