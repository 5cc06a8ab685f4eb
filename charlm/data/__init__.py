"""The data side: text → vocabulary and ids (`corpus`, `vocab`), where texts come from
(`sources`: the corpora `charlm corpus get` builds) and how ids are laid out for
training (`batches`: lanes and windows)."""
