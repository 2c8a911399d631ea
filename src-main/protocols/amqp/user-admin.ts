/**
 * Managing the AMQP listener's users as RabbitMQ's management API does
 * (`/api/users/{name}`, `/api/permissions/{vhost}/{user}`): list them with
 * their tags, per-vhost permissions and open connections; add one or change
 * its password and tags; delete one, which closes its open connections with
 * 320 `user '…' is deleted` as RabbitMQ does; set or clear a user's
 * permissions on a vhost, which apply to the next operation of connections
 * already open (RabbitMQ refuses them from then on, the connection stays).
 * Password hashes never leave the store.
 */
import type { AmqpUserInfo } from '../../contract/types.js';
import { AmqpError } from './errors.js';
import type { AmqpServer } from './server.js';
import type { Permissions } from './users.js';

export class AmqpUserAdmin {
  constructor(private readonly server: AmqpServer) {}

  list(): AmqpUserInfo[] {
    const open = new Map<string, number>();
    for (const c of this.server.list()) if (c.user && c.state !== 'closed') open.set(c.user.name, (open.get(c.user.name) ?? 0) + 1);
    return this.server.users
      .list()
      .map((u) => ({
        name: u.name,
        tags: [...u.tags],
        permissions: Object.entries(u.permissions)
          .map(([vhost, p]) => ({ vhost, configure: p.configure, write: p.write, read: p.read }))
          .sort((a, b) => a.vhost.localeCompare(b.vhost)),
        loopbackOnly: this.server.isLoopbackOnly(u.name),
        connections: open.get(u.name) ?? 0,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): AmqpUserInfo | undefined {
    return this.list().find((u) => u.name === name);
  }

  /** Adds the user, or changes its password and tags; its permissions are kept. */
  put(name: string, password: string, tags: string[]): AmqpUserInfo {
    this.server.users.putUser(name, password, tags);
    return this.get(name)!;
  }

  /** False when there is no such user. */
  delete(name: string): boolean {
    if (!this.server.users.deleteUser(name)) return false;
    for (const c of this.server.list()) {
      if (c.user?.name === name && c.state !== 'closing' && c.state !== 'closed') c.closeWith(new AmqpError(320, `user '${name}' is deleted`));
    }
    return true;
  }

  setPermissions(user: string, vhost: string, p: Permissions): AmqpUserInfo {
    this.server.users.setPermissions(user, vhost, p);
    return this.get(user)!;
  }

  /** False when the user had no permissions there. */
  clearPermissions(user: string, vhost: string): boolean {
    const had = Object.hasOwn(this.server.users.get(user)?.permissions ?? {}, vhost);
    this.server.users.clearPermissions(user, vhost);
    return had;
  }
}
