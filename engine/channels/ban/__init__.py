"""The `ban` channel: firing alerts ban their address in an nftables set (channel.py);
settings, the ban book, the protection policy and the nft driver in their own modules."""
