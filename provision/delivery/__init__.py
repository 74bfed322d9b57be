"""Getting cloud-init data to the node: snippets over SFTP, or a NoCloud ISO over the API."""
