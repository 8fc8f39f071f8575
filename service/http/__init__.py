"""HTTP plumbing shared by the domain areas: problems, identity, the app's services."""
