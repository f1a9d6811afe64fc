# placeholder until the host lands (not committed)
