"""Protocol extractors: bytes of one flow in, ECS field values out."""
