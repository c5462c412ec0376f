// Drives the public npm client `tradovate` (unchanged) against the simulator.
// The library has no base-URL parameter: its exported `URLs` enum is the URL table every
// module reads (TradovateService copies DEMO_URL when it is first loaded; RequestSocket
// validates its url against the table). So we point that table at the simulator *before*
// loading the service module. No library code is modified or copied.
const types = require('tradovate/dist/types')
types.URLs.DEMO_URL = process.env.SIM_REST
types.URLs.WS_DEMO_URL = process.env.SIM_WS
const { TradovateService, RequestSocket } = require('tradovate')

async function main() {
  const creds = JSON.parse(process.env.SIM_CREDS)
  const service = new TradovateService()
  const auth = await service.connect({
    name: creds.name, password: creds.password, appId: creds.appId,
    appVersion: creds.appVersion, cid: creds.cid, sec: creds.sec, deviceId: creds.deviceId,
  })
  const accounts = await service.get('account/list')
  const account = accounts.find(a => a.name === process.env.SIM_ACCOUNT)
  const restOrder = await service.post('order/placeorder', {
    accountSpec: account.name, accountId: account.id, clOrdId: 'npm-rest-1', action: 'Buy',
    symbol: 'ESZ6', orderQty: 1, orderType: 'Market', isAutomated: true,
  })
  const socket = new RequestSocket(types.URLs.WS_DEMO_URL)
  await socket.connect()
  const wsOrder = await socket.request({
    url: 'order/placeorder',
    body: { accountSpec: account.name, accountId: account.id, clOrdId: 'npm-ws-1', action: 'Sell',
            symbol: 'ESZ6', orderQty: 1, orderType: 'Limit', price: 6000, isAutomated: true },
  })
  const sync = await socket.request({ url: 'user/syncrequest', body: { users: [auth.userId] } })
  socket.disconnect()
  process.stdout.write('RESULT ' + JSON.stringify({
    userId: auth.userId, accounts: accounts.map(a => a.name), restOrder, wsOrder: wsOrder.d,
    wsStatus: wsOrder.s, syncKeys: Object.keys(sync.d), syncOrders: sync.d.orders.length,
  }) + '\n')
}

main().then(() => process.exit(0), err => { console.error('FAILED', err); process.exit(1) })
