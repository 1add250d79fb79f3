#if canImport(Glibc)
import Glibc
#endif
import Config
import IMAP
import Maildir
import State
import Support

/// The sync engine for one folder, written once over two `FolderStore`s — the server
/// ("far") and the Maildir ("near"): recovery of journaled transfers, both views, the
/// plan, then flags, deletions and transfers. Downloads and uploads are one code path,
/// `transfer(from:to:)`, with the stores swapped.
struct FolderSync {
    let account: AccountConfiguration
    let state: StateStore
    let accountID: AccountID
    let policy: SyncPolicy
    let logger: Logger
    let dryRun: Bool
    /// Messages per transfer batch: one journal commit, one durable delivery, one state commit.
    var transferBatch = 250
    var progress: ProgressLine?
    /// Where this account's passes meet to carry server moves (nil: no move possible).
    var broker: MoveBroker?
    /// Called once a pass has sent its last command, while its downloads are made durable
    /// (the session is free until the next folder's pass: see `IMAPFolderStore.sendOpenAhead`).
    var whenServerIdle: (@Sendable () async -> Void)?
    /// `keywords = "notmuch"`: notmuch and what changed in it since the last pass.
    var notmuch: NotmuchPass?

    /// One pass over a folder. A pass that fails throws `FolderPassFailed`, which carries
    /// what the pass did before it failed (counts a user reads must be true).
    func sync(far: IMAPFolderStore, near: MaildirFolderStore, folder: [String], record initial: FolderRecord,
              status: MailboxStatus? = nil) async throws -> FolderReport {
        var report = FolderReport(folder: folder)
        do {
            try await pass(far: far, near: near, folder: folder, record: initial, status: status, report: &report)
        } catch {
            throw FolderPassFailed(report: report, underlying: error)
        }
        return report
    }

    private func pass(far: IMAPFolderStore, near: MaildirFolderStore, folder: [String], record initial: FolderRecord,
                      status: MailboxStatus?, report: inout FolderReport) async throws {
        var record = initial
        let log = logger.with(context: account.name + "/" + FolderNaming.displayName(folder))
        // Fast path: the server says nothing moved (LIST-STATUS: UIDVALIDITY, UIDNEXT,
        // HIGHESTMODSEQ) and the Maildir's cur/ and new/ were not touched since the last
        // pass: nothing to do, not even a SELECT.
        // Tags changed in notmuch touch no directory: such a folder gets a full pass.
        let tagChanges = notmuch?.changes.changes(in: near.folder)
        if tagChanges == nil, try isUnchanged(status: status, record: record, folder: near.folder) { return }
        let name = FolderNaming.displayName(folder)
        Trace.mark("\(name): start")
        let opening = try openArguments(record: record, status: status)
        let selected = try await far.open(changedSince: opening.changedSince, newFrom: opening.newFrom)
        report.selectedAhead = far.openedAhead
        Trace.mark("\(name): selected")
        // The folder's keywords: codes for them are given out as the server is listed.
        let keywords = try FolderKeywords.load(mode: account.keywords, state: state, folder: record.id, maildir: near.folder,
                                               tags: TagMapping(account.keywordTags))
        far.keywords = keywords
        near.keywords = keywords
        if let known = record.uidValidity, let now = selected.uidValidity, known != now {
            // A dry run re-matches too: on its in-memory copy of the state, with read-only
            // FETCHes (BODY.PEEK), so it shows what the real pass will do.
            let outcome = try await UIDValidityRematch(state: state, accountID: record.account)
                .run(record: &record, session: far.session, folder: near.folder, validity: now, keywords: keywords)
            log.warn((known.rawValue == 0 ? "re-matched for the account's new mailbox: "
                      : "the server's UIDVALIDITY changed (\(known) → \(now)): the folder was recreated or restored on the server. ")
                     + "\(outcome.matched) message(s) re-matched by Message-ID and size keep their local files; "
                     + "\(outcome.serverOnly) only on the server will be downloaded and \(outcome.localOnly) only here uploaded; nothing is deleted")
            report.rematched = outcome.matched
        } else if record.uidValidity == nil, let now = selected.uidValidity, selected.exists > 0,
                  near.folder.holdsMessages, try state.pairCount(in: record.id) == 0,
                  try state.pendingJournalCount(in: record.id) == 0 {
            // A first pass over a folder with messages on both sides (a Maildir another tool
            // kept in sync with this server, a state lost or started afresh): the messages
            // already on both sides are paired by Message-ID and size, not copied both ways.
            // Not after an interrupted first pass: its journal knows what it moved, and
            // recovery pairs that exactly.
            let outcome = try await UIDValidityRematch(state: state, accountID: record.account)
                .run(record: &record, session: far.session, folder: near.folder, validity: now, keywords: keywords)
            if outcome.matched > 0 {
                log.info("first pass with messages on both sides: \(outcome.matched) found on both (by Message-ID and size) are paired, "
                         + "\(outcome.serverOnly) only on the server will be downloaded and \(outcome.localOnly) only here uploaded")
                report.paired = outcome.matched
            }
        }
        // Pairs the re-match wrote may use codes given out just now.
        if !dryRun { try keywords.save(state: state, folder: record.id, maildir: near.folder) }
        if !dryRun { report.recovered = try await recover(record: record, far: far, near: near, log: log) }
        if tagChanges == nil, try await syncChangesOnly(far: far, near: near, selected: selected, record: &record, report: &report, log: log) { return }

        let server: ServerChanges
        if policy.direction == .both, let since = record.highestModSeq, !selected.noModSeq, selected.highestModSeq != nil,
           record.uidValidity == selected.uidValidity, try state.hasPairs(in: record.id), record.lastError == nil, !policy.force {
            // CONDSTORE: only what changed since the last pass. With direction = both, the
            // agreed flags of every pair are the server's flags as of that pass, so the pairs
            // stay in the state: the planner reads each one's agreed flags as it comes.
            // Messages left on the server on purpose (max_message_size) are not paired; they
            // stay listed as they were unless they vanished.
            var alsoKnown: [UID: Int64?] = [:]
            for item in try state.skipped(in: record.id) where try state.pair(in: record.id, uid: item.uid) == nil {
                alsoKnown[item.uid] = item.size
            }
            let folderID = record.id
            server = try await far.listChanges(since: since, paired: { [state] in try state.pairedUIDs(in: folderID) },
                                               alsoKnown: alsoKnown, exists: selected.exists)
        } else {
            let listing = try await far.list()
            server = ServerChanges(complete: listing)
            try forgetUnfetchable(record: record) { listing[.uid($0)] == nil }   // the whole list: gone from the server
        }
        let farMessages = server.listed
        Trace.mark("\(name): server listed (\(farMessages.count))")
        let markerBeforeScan = near.folder.changeMarker()
        let nearMessages = try await near.list()
        if near.skippedNames > 0 { log.warn("\(near.skippedNames) file(s) with names that are not UTF-8 are left alone") }
        let local = nearMessages   // read in place, not copied
        Trace.mark("\(name): local listed")
        // The pairs are read from the state as the planner walks the listing, never all held.
        let folderID = record.id
        // Tags met for the first time get their codes before the planner's scope is taken.
        for m in tagChanges?.values ?? [:].values { _ = keywords.codes(ofTags: m.tags) }
        var scope = FlagScope(keywords, permanentFlags: selected.permanentFlags)
        if let tagChanges { scope.localTags = { name in tagChanges[name].map { keywords.codes(ofTags: $0.tags) } } }
        var plan = try FolderPlanner.plan(remote: server, local: local, policy: policy, scope: scope) { visit in
            try state.forEachPairInNameOrder(in: folderID) { pair in if let p = PlannedPair(pair) { visit(p) } }
        }
        // max_message_size and max_age leave some server messages where they are (and listed
        // by `status`); older local messages are kept either way.
        var skipped: [(uid: UID, size: Int64?, reason: String)] = []
        let oldest = account.maxAge.map { Int64(time(nil)) - Int64($0) }
        plan.downloads = plan.downloads.filter { uid in
            let m = farMessages[.uid(uid)]
            if let limit = account.maxMessageSize, let size = m?.size, size > limit {
                skipped.append((uid, size, "larger than max_message_size"))
                return false
            }
            if let oldest, let date = m?.date, date < oldest { return false }
            return true
        }
        if !skipped.isEmpty {
            log.warn("\(skipped.count) message(s) larger than max_message_size (\(account.maxMessageSize ?? 0) bytes) left on the server; `mailmirror status` lists them")
        }
        report.skippedTooLarge = skipped.count
        try holdRefused(&plan, nearMessages: nearMessages, record: record)
        count(plan, remoteTotal: server.count, localTotal: local.count, into: &report, log: log)
        if !dryRun { try state.replaceSkipped(in: record.id, skipped) }
        if dryRun {
            report.downloaded = plan.downloads.count
            report.uploaded = plan.uploads.count
            return
        }

        try await carryOut(plan, far: far, near: near, farMessages: farMessages, nearMessages: nearMessages, local: local,
                           localIsComplete: true, markerBeforeScan: markerBeforeScan, selected: selected,
                           record: &record, report: &report, log: log)
    }

    /// Counts what a plan does into the report, and warns about deletions it holds back.
    func count(_ plan: FolderPlan, remoteTotal: Int, localTotal: Int, into report: inout FolderReport, log: Logger) {
        report.heldDeletions = plan.heldRemoteDeletions + plan.heldLocalDeletions
        if plan.heldRemoteDeletions > 0 {
            log.warn("\(plan.heldRemoteDeletions) of \(remoteTotal) messages deleted locally would be deleted on the server (more than max_delete_fraction = \(account.maxDeleteFraction)); held — run `mailmirror sync --force` to let them through")
        }
        if plan.heldLocalDeletions > 0 {
            log.warn("\(plan.heldLocalDeletions) of \(localTotal) local messages would be deleted because the server expunged them (more than max_delete_fraction = \(account.maxDeleteFraction)); held — run `mailmirror sync --force` to let them through")
        }
        report.flagChanges = plan.localFlags.count + plan.remoteFlags.count
        report.deleted = plan.deleteLocal.count + plan.deleteRemote.count
    }

    /// An incremental pass, when the Maildir did not change since the last pass (its marker,
    /// read once the folder is watched) and the server said what changed and what vanished
    /// (QRESYNC, in the flight of the SELECT): only the pairs those name are loaded and only
    /// their files looked up where the pairs say they are — no scan of the folder, no load
    /// of every pair; the cost follows the changes, not the folder's size. Returns false,
    /// having changed nothing, when any of that does not hold: the full pass follows.
    func syncChangesOnly(far: IMAPFolderStore, near: MaildirFolderStore, selected: SelectedMailbox,
                         record: inout FolderRecord, report: inout FolderReport, log: Logger) async throws -> Bool {
        guard policy.direction == .both, !dryRun, !policy.force, report.recovered == 0, report.rematched == nil, report.paired == 0, record.lastError == nil,
              account.maxMessageSize == nil, account.maxAge == nil,
              let since = record.highestModSeq, let validity = record.uidValidity, selected.uidValidity == validity, !selected.noModSeq,
              let marker = record.localMarker, let (changed, vanished) = far.earlyChanges(since: since), vanished.count <= 10_000,
              try state.skipped(in: record.id).isEmpty else { return false }
        near.startWatching()   // before the marker is read: a change after it is seen by the watch
        guard near.witness != nil, near.folder.changeMarker() == marker else { return false }
        var pairs: [MessagePair] = []
        var remote: [UID: MessageFlags] = [:]
        var farMessages: [MessageKey: StoreMessage] = [:]
        for m in changed {
            guard let uid = m.uid, !vanished.contains(uid) else { continue }
            let flags = far.keywords.letters(m.flags ?? [])
            remote[uid] = flags
            farMessages[.uid(uid)] = StoreMessage(key: .uid(uid), flags: flags, date: m.internalDate, size: m.size)
            if let p = try state.pair(in: record.id, uid: uid) { pairs.append(p) }
        }
        for uid in vanished { if let p = try state.pair(in: record.id, uid: uid) { pairs.append(p) } }
        var files: [MaildirMessage] = []
        var local: [String: MessageFlags] = [:]
        var nearMessages: [MessageKey: StoreMessage] = [:]
        for p in pairs {
            // Only plain pairs, each file exactly where its agreed flags put it.
            guard let name = p.localName, name != PlannedPair.goneLocal, (p.uid?.rawValue ?? 0) != 0,
                  let file = near.folder.locate(baseName: name, flags: MessageFlags(p.flags).intersection(far.keywords.mirrored)) else { return false }
            files.append(file)
            local[name] = file.flags
            nearMessages[.name(name)] = StoreMessage(key: .name(name), flags: file.flags, date: nil, size: file.size)
        }
        if !vanished.isEmpty { try forgetUnfetchable(record: record) { vanished.contains($0) } }
        Trace.mark("\(FolderNaming.displayName(report.folder)): \(pairs.count) pair(s) touched, \(remote.count) changed on the server")
        near.adopt(files)
        report.incremental = true
        let planned = pairs.compactMap(PlannedPair.init)
        let localTotal = try state.pairCount(in: record.id)
        let plan = FolderPlanner.plan(remote: remote, local: local, pairs: planned, policy: policy,
                                      totals: (remote: selected.exists, local: localTotal),
                                      scope: FlagScope(far.keywords, permanentFlags: selected.permanentFlags))
        count(plan, remoteTotal: selected.exists, localTotal: localTotal, into: &report, log: log)
        try await carryOut(plan, far: far, near: near, farMessages: MessageListing(farMessages), nearMessages: MessageListing(nearMessages), local: local,
                           localIsComplete: false, markerBeforeScan: marker, selected: selected,
                           record: &record, report: &report, log: log)
        return true
    }

    /// Carries out a plan: flags and deletions on both sides, the transfers, then the
    /// folder's record (the server as SELECT saw it; the Maildir's marker when nobody else
    /// changed the folder meanwhile). `local` is every message file when `localIsComplete`,
    /// else only those the plan touches (an incremental pass: then only the folder's watch
    /// can vouch for the rest).
    func carryOut(_ planned: FolderPlan, far: IMAPFolderStore, near: MaildirFolderStore,
                  farMessages: MessageListing, nearMessages: MessageListing, local: some LocalFlags,
                  localIsComplete: Bool, markerBeforeScan: String?, selected: SelectedMailbox,
                  record: inout FolderRecord, report: inout FolderReport, log: Logger) async throws {
        let name = FolderNaming.displayName(report.folder)
        var plan = planned
        let keywords = far.keywords
        // Codes given to keywords met in this pass are named on disk before anything uses them.
        try keywords.save(state: state, folder: record.id, maildir: near.folder)
        if localIsComplete { try noteKeptLocal(plan.keptLocal, keywords: keywords, record: record, log: log) }
        // Server moves: gone messages wait for claims; arrivals parked elsewhere are renamed here.
        let parked = await parkGone(&plan, near: near, record: record)
        Trace.mark("\(name): parked \(parked.count)")
        let movedHere = try await claimArrivals(&plan, farMessages: farMessages, far: far, near: near, record: record, log: log)
        report.movedHere = movedHere.count
        Trace.mark("\(name): claimed \(movedHere.count)")
        // notmuch: tag changes of existing messages go first, before this pass renames any
        // file (notmuch indexed them at the start of the account pass: with synchronize_flags
        // `notmuch tag` rewrites file names from the tags it holds).
        if let notmuch {
            var tagChanges: [Notmuch.TagChange] = []
            let changed = notmuch.changes.changes(in: near.folder)
            for change in plan.localTags {
                guard let id = changed?[change.localName]?.id ?? messageID(near, change.localName) else { continue }
                tagChanges.append(.init(id: id, add: keywords.tagNames(of: change.flags.subtracting(change.was)),
                                        remove: keywords.tagNames(of: change.was.subtracting(change.flags))))
            }
            try await notmuch.notmuch.tag(tagChanges, scratch: notmuch.scratch)
        }
        // Flags and deletions: idempotent, so a crash in between is settled by the next plan.
        try await near.apply(plan.localFlags.compactMap { change in
            guard let current = local.flags(of: change.localName) else { return nil }
            return FlagChange(key: .name(change.localName), add: change.flags.subtracting(current), remove: current.subtracting(change.flags))
        })
        Trace.mark("\(name): local flags")
        try await far.apply(plan.remoteFlags.map { FlagChange(key: .uid($0.uid), add: $0.add, remove: $0.remove) })
        try await far.delete(plan.deleteRemote.map { .uid($0.uid) })
        try await near.delete(plan.deleteLocal.map { .name($0.localName) })
        try state.transaction {
            for agreed in plan.agreedFlags { try state.updatePairFlags(id: agreed.pairID, flags: agreed.flags.stored) }
            try state.deletePairs(ids: plan.deleteRemote.map(\.pairID) + plan.deleteLocal.map(\.pairID) + plan.forget)
            for id in plan.keepLocalOnly { try state.markPair(id: id, uid: PlannedPair.goneRemote, localName: nil) }
            for id in plan.keepRemoteOnly { try state.markPair(id: id, uid: nil, localName: PlannedPair.goneLocal) }
        }

        Trace.mark("\(name): flags and deletions applied")
        // Transfers: one code path, both directions.
        var downloadedNames: [String: MessageFlags] = [:]
        // Messages whose FETCH made the server give up before: alone, left there (unless
        // --force); suspects, fetched one at a time after the others.
        let troubled = plan.downloads.isEmpty ? [:] : try state.unfetchable(in: record.id)
        if !troubled.isEmpty && !policy.force {
            let before = plan.downloads.count
            plan.downloads.removeAll { troubled[$0]?.failed == true }
            report.unfetchable = before - plan.downloads.count
        }
        var taggedDownloads: [(name: String, codes: MessageFlags)] = []
        // The names of the new files are only needed to check the folder by listing it again,
        // when no watch can vouch for it: not kept otherwise (100,000 names in a first pass).
        let noteDownloads = near.witness == nil
        _ = try await transfer(from: far, to: near, keys: plan.downloads.lazy.map { .uid($0) }, tally: &report.downloaded, unreadable: &report.unreadable,
                               flags: { farMessages[$0]?.flags }, sizes: { farMessages[$0]?.size },
                               kind: .download, record: record, log: log,
                               afterLastReceive: plan.uploads.isEmpty ? whenServerIdle : nil,
                               alone: Set(troubled.keys)) { from, to in
            if noteDownloads, let name = to.name { downloadedNames[name] = keywords.mirroredPart(farMessages[from]?.flags ?? MessageFlags()).fileLetters }
            if let name = to.name, let codes = farMessages[from]?.flags.intersection(keywords.tagged), !codes.isEmpty {
                taggedDownloads.append((name, codes))
            }
        }
        // A flag the folder cannot keep is not sent with an upload either (it stays local).
        let unstorable = keywords.unstorable(selected.permanentFlags).letters
        let uploads = try await transfer(from: near, to: far, keys: plan.uploads.map { .name($0) }, tally: &report.uploaded, unreadable: &report.unreadable,
                                         flags: { key in nearMessages[key].map { m in
                                             var f = m.flags
                                             // notmuch: a new file's tags go up with it.
                                             if let name = key.name, let tags = notmuch?.changes.changes(in: near.folder)?[name]?.tags {
                                                 f = f.union(keywords.codes(ofTags: tags))
                                             }
                                             for l in unstorable { f.remove(l) }
                                             return f
                                         } },
                                         kind: .upload, record: record, log: log)
        report.refusedUploads = uploads.refused.count
        if !uploads.refused.isEmpty {
            try state.transaction {
                for (key, reason) in uploads.refused {
                    guard let name = key.name else { continue }
                    try state.noteRefused(in: record.id, name: name, size: nearMessages[key]?.size ?? 0, reason: reason, at: Int64(time(nil)))
                }
            }
        }

        if let notmuch {
            var tagChanges: [Notmuch.TagChange] = []
            for (file, codes) in taggedDownloads {
                if let id = messageID(near, file) { tagChanges.append(.init(id: id, add: keywords.tagNames(of: codes), remove: [])) }
            }
            if tagChanges.contains(where: { !$0.add.isEmpty || !$0.remove.isEmpty }) {
                // Indexed first: the downloads become messages (and renames made here reach
                // notmuch before `notmuch tag` rewrites file names from the tags it holds).
                try await notmuch.notmuch.index()
                try await notmuch.notmuch.tag(tagChanges, scratch: notmuch.scratch)
            }
        }
        Trace.mark("\(name): transferred")
        record.uidValidity = selected.uidValidity
        if parked.isEmpty {
            record.uidNext = selected.uidNext
            record.highestModSeq = selected.highestModSeq
        } else {
            // Parked messages are settled once every pass is over; until then the folder's
            // old position stays noted, so that a crash brings their vanishing back.
            await broker?.hold(record.id, at: .init(uidNext: selected.uidNext, highestModSeq: selected.highestModSeq))
        }
        // The server is noted as SELECT saw it (a change racing with the pass is never hidden;
        // after our own server writes the next pass runs once more and finds nothing). The
        // Maildir is noted as it is now only if nothing foreign slipped in — the folder's
        // watch saw only this pass's changes, or a fresh listing shows exactly what the pass
        // left; otherwise as it was before the scan (the next pass looks again).
        let stateAtEnd = near.folder.markerState()
        // Nobody else touched the folder (its watch saw only this pass's changes): it holds
        // what the pass expects, no need to list it again.
        let untouched = near.witness?.untouchedByOthers() == true
        // Else what the folder should hold now, compared with a fresh listing.
        var expected: [String: MessageFlags]?
        if !untouched && localIsComplete && noteDownloads {
            var e: [String: MessageFlags] = [:]
            for name in local.names { e[name] = local.flags(of: name) }
            for change in plan.localFlags where e[change.localName] != nil { e[change.localName] = change.flags.fileLetters }
            for item in plan.deleteLocal { e[item.localName] = nil }
            for (key, flags) in downloadedNames { e[key] = flags }
            for (key, flags) in movedHere { e[key] = flags }
            expected = e
        }
        let matches = untouched || (expected != nil && (try? near.currentFlags()) == expected)
        if matches, let stateAtEnd {
            // Trusted once the coarse clock passed the directories' mtimes after the
            // listing (a later change is stamped later); if it has not yet (written in this
            // tick), the account pass notes it once it has, after checking the listing again.
            if MaildirFolder.coarseClock() >= stateAtEnd.trustedFrom {
                record.localMarker = stateAtEnd.marker
            } else {
                record.localMarker = nil
                if !dryRun { report.settle = (record.id, expected, stateAtEnd.trustedFrom, stateAtEnd.marker, untouched ? near.witness : nil) }
            }
        } else {
            record.localMarker = markerBeforeScan
        }
        record.lastSync = Int64(time(nil))
        // Held deletions keep the folder off the fast path (every pass warns again) and show in status.
        // Files that could not be read do the same (a chmod changes no directory's mtime).
        record.lastError = report.heldDeletions > 0
            ? "\(report.heldDeletions) deletion(s) held by the mass-deletion guard; run `mailmirror sync --force` to let them through"
            : report.unreadable > 0
            ? "\(report.unreadable) file(s) could not be read and were not uploaded; make them readable, the next pass sends them"
            : nil
        try state.updateFolder(record)
        Trace.mark("\(name): done")
    }

    /// The Message-ID of a local message (notmuch's id), from its file.
    func messageID(_ near: MaildirFolderStore, _ name: String) -> String? {
        guard let file = near.file(named: name) ?? near.folder.find(baseName: name),
              let id = MessageIdentity.messageID(ofFile: near.folder.filePath(of: file)) else { return nil }
        return String(decoding: id, as: UTF8.self)
    }

    /// Notes (for `status`) and warns once about the keywords local messages carry that the
    /// server folder cannot keep (PERMANENTFLAGS without `\*`): they stay local, never sent.
    func noteKeptLocal(_ codes: MessageFlags, keywords: FolderKeywords, record: FolderRecord, log: Logger) throws {
        let names = keywords.names(of: codes)
        let noted = names.isEmpty ? nil : names.joined(separator: " ")
        guard try state.unstorableKeywords(in: record.id) != noted else { return }
        try state.setUnstorableKeywords(in: record.id, noted)
        if let noted {
            log.warn("the server folder cannot keep the keyword(s) \(noted) (its PERMANENTFLAGS has no \\*): they stay on the local messages and are not sent; `mailmirror status` lists them")
        }
    }

    /// Local messages the server refused before stay out of `plan.uploads` while their file
    /// is the same (a big message is not sent again at every pass; `--force` tries them
    /// again); refusals of files gone, changed or paired since are forgotten.
    func holdRefused(_ plan: inout FolderPlan, nearMessages: MessageListing, record: FolderRecord) throws {
        let refused = try state.refused(in: record.id)
        guard !refused.isEmpty else { return }
        var stale: [String] = []
        for (name, r) in refused where try nearMessages[.name(name)]?.size != r.size || state.pair(in: record.id, localName: name) != nil {
            stale.append(name)
        }
        if !stale.isEmpty && !dryRun { try state.forgetRefused(in: record.id, names: stale) }
        guard !policy.force else { return }
        plan.uploads.removeAll { name in refused[name].map { $0.size == nearMessages[.name(name)]?.size } ?? false }
    }

    /// How a pass SELECTs the folder: the changes since the last pass go out with the SELECT
    /// when nothing has to happen in between (no journal to recover), and new messages
    /// (UIDNEXT grew, per LIST-STATUS) get a FETCH of their own in that flight.
    func openArguments(record: FolderRecord, status: MailboxStatus?) throws -> (changedSince: ModSeq?, newFrom: UID?) {
        let quick = try policy.direction == .both && record.lastError == nil && !dryRun && record.uidValidity != nil
            && state.pendingJournalCount(in: record.id) == 0
        let grew = status.map { $0.uidNext != record.uidNext } ?? true
        return (quick ? record.highestModSeq : nil, grew ? record.uidNext : nil)
    }

    /// Whether a pass over the folder would find nothing to do: the server says nothing moved
    /// (LIST-STATUS: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ as noted) and the Maildir's `cur/`
    /// and `new/` were not touched since the last pass.
    func isUnchanged(status: MailboxStatus?, record: FolderRecord, folder: MaildirFolder) throws -> Bool {
        guard let status, !dryRun, !policy.force, let validity = record.uidValidity, status.uidValidity == validity,
              status.uidNext == record.uidNext, let modseq = status.highestModSeq, modseq == record.highestModSeq,
              record.lastError == nil, let marker = record.localMarker, marker == folder.changeMarker() else { return false }
        return try state.pendingJournalCount(in: record.id) == 0
    }

    /// Moves `keys` from one store to the other in batches: the messages stream from the
    /// source into the destination (nothing visible there yet), each one's arrival mark —
    /// how it is found there after a crash — is journaled (synchronous=FULL, or flushed with
    /// the batch), the destination makes them visible and durable, and only then are the new
    /// pairs recorded and the journal resolved (docs/recovery.md).
    /// `tally` counts the messages moved as each batch is recorded (true after a failure too).
    /// `keys` may be a lazy view (a first pass's 100,000 downloads are not copied into keys).
    func transfer<Keys: RandomAccessCollection<MessageKey>>(from source: FolderStore, to destination: FolderStore, keys: Keys,
                  tally: inout Int, unreadable: inout Int,
                  flags flagsOf: (MessageKey) -> MessageFlags?,
                  sizes: (MessageKey) -> Int64? = { _ in nil }, kind: JournalKind, record: FolderRecord, log: Logger,
                  afterLastReceive: (@Sendable () async -> Void)? = nil, alone: Set<UID> = [],
                  moved onMoved: (MessageKey, MessageKey) -> Void = { _, _ in }) async throws -> (moved: Int, refused: [(key: MessageKey, reason: String)]) {
        guard !keys.isEmpty else { return (0, []) }
        // What a pair agrees on: the folder's mirrored codes of what was sent.
        let table = (source as? IMAPFolderStore)?.keywords ?? (destination as? IMAPFolderStore)?.keywords ?? .none
        let mirroredPart = table.mirroredPart
        var moved = 0
        var refused: [(key: MessageKey, reason: String)] = []
        let label = "\(account.name)/\(FolderNaming.displayName(record.localName.split(separator: "/").map(String.init))) \(kind == .download ? "downloading" : "uploading")"
        // Downloads in `alone` (their FETCH made the server give up before) go last, one per batch.
        let separated: [MessageKey]? = alone.isEmpty ? nil : keys.filter { $0.uid.map { !alone.contains($0) } ?? true }
        let loners = alone.isEmpty ? [] : keys.filter { $0.uid.map(alone.contains) ?? false }
        let togetherCount = separated?.count ?? keys.count
        let batches = (togetherCount + transferBatch - 1) / transferBatch
        let chunkCount = batches + loners.count
        for index in 0..<chunkCount {
            let chunk: [MessageKey]
            if index >= batches {
                chunk = [loners[index - batches]]
            } else {
                let range = index * transferBatch..<min((index + 1) * transferBatch, togetherCount)
                chunk = separated.map { Array($0[range]) }
                    ?? Array(keys[keys.index(keys.startIndex, offsetBy: range.lowerBound)..<keys.index(keys.startIndex, offsetBy: range.upperBound)])
            }
            let batch = try destination.incoming()
            var journal: [MessageKey: JournalID] = [:]
            // This batch's flags only: a copy for every message would grow with the folder.
            var flags: [MessageKey: MessageFlags] = [:]
            for key in chunk { flags[key] = flagsOf(key) }
            do {
                try batch.prepare(chunk)
                try await source.export(chunk, flags: flags, into: batch)
                Trace.mark("\(label): received")
                let marks = batch.marks
                // The journal must be on disk before any message is visible at its destination:
                // its own fsync (FULL), unless the destination's commit flushes it together
                // with the messages (Maildir deliveries, before their renames).
                let flushedWithBatch = state.commitLogPath.map(batch.alsoFlush) ?? false
                try state.transaction(durability: flushedWithBatch ? .normal : .full) {
                    for key in chunk {
                        guard let mark = marks[key] else { continue }   // not received: nothing to find
                        var entry = JournalEntry(account: accountID, folder: record.id, kind: kind, token: mark.uniqueName,
                                                 uidNextBefore: mark.uidNext, flags: flags[key].map { mirroredPart($0).stored },
                                                 created: Int64(time(nil)), uidValidity: mark.uidValidity, size: mark.sent?.size,
                                                 messageID: mark.sent?.messageID, digest: mark.sent?.digest,
                                                 normalizedSize: mark.sent?.normalized?.size, normalizedDigest: mark.sent?.normalized?.digest)
                        switch key {
                        case .uid(let u): entry.uid = u
                        case .name(let n): entry.localName = n
                        }
                        journal[key] = try state.addJournalEntry(entry)
                    }
                }
                Trace.mark("\(label): journaled \(journal.count)")
                if index == chunkCount - 1, let afterLastReceive { await afterLastReceive() }
                let mapping = try await batch.commit()
                Trace.mark("\(label): durable")
                for (key, reason) in batch.refused {
                    log.warn("the \(destination.sideName) refused \(key.name.map { "message \($0)" } ?? "a message") (\(reason)); it stays where it is, `mailmirror status` lists it, and `mailmirror sync --force` tries it again")
                }
                refused += batch.refused
                for (_, reason) in batch.unreadable {
                    log.warn("\(reason): not uploaded; make the file readable (chmod/chown) and the next pass sends it")
                }
                unreadable += batch.unreadable.count
                try state.transaction {
                    var pairs: [MessagePair] = []
                    for (from, to) in mapping {
                        // The server's RFC822.SIZE, when known: a later move is matched without reading the file.
                        pairs.append(MessagePair(folder: record.id, uid: from.uid ?? to.uid, localName: from.name ?? to.name,
                                                 flags: mirroredPart(flags[from] ?? MessageFlags()).stored,
                                                 size: sizes(from) ?? marks[from]?.sent?.size))
                    }
                    try state.insertPairs(pairs)
                    // After a failure part-way (`batch.failure`), only what arrived is settled:
                    // the rest stays journaled, for recovery to look for.
                    for (key, id) in journal where batch.failure == nil || mapping[key] != nil { try state.resolveJournalEntry(id) }
                }
                for (from, to) in mapping { onMoved(from, to) }
                moved += mapping.count
                tally += mapping.count
                progress?.update(label, done: moved, total: keys.count)
                if let failure = batch.failure { throw failure }
                let fetchedAlone = chunk.compactMap(\.uid).filter(alone.contains)
                if !fetchedAlone.isEmpty { try state.forgetUnfetchable(in: record.id, uids: fetchedAlone) }
            } catch {
                batch.abort()
                if kind == .download, let reason = Self.serverGaveUp(error) {
                    let uids = chunk.compactMap(\.uid)
                    noteUnfetchable(uids, failedAlone: uids.count == 1 && alone.contains(uids[0]), reason: reason, record: record, log: log)
                }
                throw error
            }
        }
        progress?.clear()
        return (moved, refused)
    }

    /// Forgets the folder's messages the server could not send that are `gone` from it.
    func forgetUnfetchable(record: FolderRecord, gone: (UID) -> Bool) throws {
        guard !dryRun else { return }
        let troubled = try state.unfetchable(in: record.id)
        let goneNow = troubled.keys.filter(gone)
        if !goneNow.isEmpty { try state.forgetUnfetchable(in: record.id, uids: goneNow) }
    }

    /// The server's words when it gave up sending messages — a BYE in the middle of a FETCH
    /// (Dovecot: "FETCH failed: Internal error occurred" for a message file it cannot read) or
    /// a NO to it — as opposed to the network failing (no blame on the messages).
    static func serverGaveUp(_ error: any Error) -> String? {
        switch error as? IMAPError {
        case let .bye(_, text)?: return text
        case let .commandFailed(command, _, .no, _, text)? where command.hasSuffix("FETCH"): return text
        default: return nil
        }
    }

    /// A FETCH of `uids` made the server give up: they become suspects, fetched one at a time
    /// after the others by the next passes; a suspect that fails alone (`failedAlone`: twice,
    /// so a server restarting in the middle of one message's FETCH is not blamed on it) is
    /// left on the server (listed by `status`; `--force` tries again).
    func noteUnfetchable(_ uids: [UID], failedAlone: Bool, reason: String, record: FolderRecord, log: Logger) {
        guard !uids.isEmpty, !dryRun else { return }
        try? state.noteUnfetchable(in: record.id, uids: uids, failed: failedAlone, reason: reason)
        if failedAlone {
            log.warn("the server could not send the message with UID \(uids[0]) (\(reason)); it stays on the server, `mailmirror status` lists it, and `mailmirror sync --force` tries again")
        } else {
            log.warn("the server gave up sending \(uids.count) message(s) (\(reason)); the next pass fetches them one at a time, after the others")
        }
    }

    /// Resolves the folder's journal before planning: a transfer whose message reached its
    /// destination (found by its arrival mark: a download by its file's unique name, an
    /// upload by what was sent) is adopted as a pair; one that did not is forgotten and
    /// happens again. Never a second copy on either side (docs/recovery.md).
    func recover(record: FolderRecord, far: IMAPFolderStore, near: MaildirFolderStore, log: Logger) async throws -> Int {
        let entries = try state.pendingJournalEntries(of: accountID).filter { $0.folder == record.id }
        guard !entries.isEmpty else { return 0 }
        let known = try state.pairs(in: record.id)
        let pairedUIDs = Set(known.compactMap(\.uid).filter { $0.rawValue != 0 })
        let pairedNames = Set(known.compactMap(\.localName).filter { $0 != PlannedPair.goneLocal })
        let downloads = entries.filter { e in
            e.kind == .download && e.token != nil && e.uid.map { !pairedUIDs.contains($0) } ?? false
        }
        let uploads = entries.filter { e in
            e.kind == .upload && (e.token != nil || e.digest != nil) && e.localName.map { !pairedNames.contains($0) } ?? false
        }
        var pairs: [MessagePair] = []
        var seenUIDs = Set<UID>()
        let delivered = try await near.locate(downloads.map { ArrivalMark(uniqueName: $0.token) }, excluding: Set(pairedNames.map(MessageKey.name)))
        for (entry, found) in zip(downloads, delivered) {
            guard case .name(let name)? = found, let uid = entry.uid, seenUIDs.insert(uid).inserted else { continue }
            pairs.append(MessagePair(folder: record.id, uid: entry.uid, localName: name, flags: entry.flags ?? ""))
        }
        let appended = try await far.locate(uploads.map { ArrivalMark(journaled: $0) },
                                            excluding: Set(pairedUIDs.map(MessageKey.uid)))
        for (entry, found) in zip(uploads, appended) {
            guard case .uid(let uid)? = found else { continue }
            pairs.append(MessagePair(folder: record.id, uid: uid, localName: entry.localName, flags: entry.flags ?? "", size: entry.size))
        }
        try state.transaction {
            try state.insertPairs(pairs)
            for entry in entries { try state.resolveJournalEntry(entry.id!) }
        }
        if !pairs.isEmpty { log.info("recovered \(pairs.count) message(s) transferred before an interruption") }
        return pairs.count
    }
}

/// What a folder pass needs of notmuch (`keywords = "notmuch"`).
struct NotmuchPass: Sendable {
    let notmuch: Notmuch
    /// What changed in notmuch since the last pass of the account.
    let changes: Notmuch.Changes
    /// Where the batch of tag changes is written (the state directory's spool).
    let scratch: String
}

extension ArrivalMark {
    /// The mark an upload's journal entry recorded (a version before 7 recorded a token).
    /// Without a journaled UIDNEXT (a server that sent none) the whole mailbox is searched.
    init(journaled entry: JournalEntry) {
        var sent: WireFingerprint?
        if let size = entry.size, let digest = entry.digest {
            let normalized = entry.normalizedSize.flatMap { s in entry.normalizedDigest.map { WireFingerprint.Form(size: s, digest: $0) } }
            sent = WireFingerprint(size: size, messageID: entry.messageID, digest: digest, normalized: normalized)
        }
        self.init(sent: sent, uidValidity: entry.uidValidity, uidNext: entry.uidNextBefore,
                  legacyToken: sent == nil ? entry.token : nil)
    }
}

extension MessageKey {
    var uid: UID? { if case .uid(let u) = self { u } else { nil } }
    var name: String? { if case .name(let n) = self { n } else { nil } }
}

extension MessageFlags {
    /// The letters of `self` that are not in `other`.
    func subtracting(_ other: MessageFlags) -> MessageFlags {
        var result = MessageFlags()
        for l in letters where !other.contains(l) { result.insert(l) }
        return result
    }
}
