//! Which of the later formats' records an encoder writes.

/// The records of formats after 1.3 that an encoder writes: 1.4's repeat
/// records, 1.5's address codes and predicted records, 1.6's far reach and
/// recalled reads, 1.7's ring cursors. Each implies the ones before it.
///
/// The encoder's records take these as an argument rather than reading the
/// encoder's own flags. A record inlined for ``all`` (a constant) therefore
/// tests none of them; the recorder's default format is encoded that way,
/// and older formats go through one copy, out of line.
@usableFromInline
struct RecordFeatures {
    @usableFromInline let repeats: Bool
    @usableFromInline let predicts: Bool
    @usableFromInline let recalls: Bool
    @usableFromInline let cursors: Bool

    @inlinable init(repeats: Bool, predicts: Bool, recalls: Bool, cursors: Bool) {
        self.repeats = repeats
        self.predicts = predicts && repeats
        self.recalls = recalls && predicts && repeats
        self.cursors = cursors && recalls && predicts && repeats
    }

    /// Every feature: the newest format.
    @inlinable static var all: RecordFeatures { RecordFeatures(repeats: true, predicts: true, recalls: true, cursors: true) }

    /// How far back an address code reaches (``AddressCode/reach(recalls:)``).
    @inlinable var reach: Int { AddressCode.reach(recalls: recalls) }
}
