// TODO(model helper): in progress
