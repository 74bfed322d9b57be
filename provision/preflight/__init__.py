"""Pre-flight before any write: permissions, storage content types, auth kind."""
