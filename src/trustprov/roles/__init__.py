"""Host tools of the three parties. They reach chips only through `trustprov.link`."""
