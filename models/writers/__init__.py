"""File writers for animators and previews: BVH/OBJ text, binary glTF, mesh overlays."""
