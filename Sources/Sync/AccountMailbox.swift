import Config
import State

/// Which server mailbox an account's state describes. The state is kept by account name, so
/// an account whose host or username was changed to reach another mailbox would otherwise
/// take the UIDs (IMAP) or UIDLs (POP3) remembered for the old one as its own — pairing a
/// local file with another message, or deleting an undelivered message as "delivered".
enum AccountMailbox {
    /// "imap://me@imap.example.com": the protocol, username and host (both lowercased; the
    /// port and TLS mode are left out: one mailbox is reached in several ways).
    static func identity(of account: AccountConfiguration) -> String {
        "\(account.protocol.rawValue)://\(account.username.lowercased())@\(account.host.lowercased())"
    }

    /// The mailbox the state describes (`was`) when it is not the one the account names now
    /// (`now`); nil when they agree. When none was recorded yet (a new account, or a state
    /// from before mailmirror recorded it), the current one is recorded and nil returned.
    static func changed(_ account: AccountConfiguration, state: StateStore, accountID: AccountID) throws -> (was: String, now: String)? {
        let now = identity(of: account)
        guard let recorded = try state.accountMailbox(accountID) else {
            try state.setAccountMailbox(accountID, now, forgettingUIDs: false)
            return nil
        }
        return recorded == now ? nil : (recorded, now)
    }
}
