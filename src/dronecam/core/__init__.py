"""The pure core shared by the host server, the firmware and the clients: no I/O here."""
