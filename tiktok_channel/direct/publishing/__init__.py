"""Publishing videos and photos to a directly connected TikTok account (Content Posting API, §4 of the notes)."""
